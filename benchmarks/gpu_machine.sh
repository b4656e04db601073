#!/bin/bash
# The GPU checks as one command, for a CUDA machine that reaches no package index (how the
# "GPU" table of RESULTS.md was recorded): the GPU benchmark on the quiet machine, then the
# whole test suite with every fit on CUDA. Run from the repository root, with skorch (and any
# other missing dependency) as wheels in .whl/ (ignored by git), e.g. prepared elsewhere by
#   python -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl skorch==1.4.0
# Results go to $OUT (default: gpu_out/): gpu_info.txt, gpu.md, gpu.log, tests.log.
set -o pipefail
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
    # a fresh private folder (mktemp -d: mode 700, never an existing path or link in /tmp)
    site=$(mktemp -d) || exit 3
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whl/*.whl || exit 3
    export PYTHONPATH=$site:$PWD
else
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu_info.txt" 2>&1
python3 -c "import torch, sklearn, skorch, skstrf; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0), 'sklearn', sklearn.__version__, 'skorch', skorch.__version__)" 2>&1 | tee -a "$OUT/gpu_info.txt"
timeout 200 python3 benchmarks/gpu.py --large --skip-deepstrf --repeats 2 --threads 8 --markdown "$OUT/gpu.md" > "$OUT/gpu.log" 2>&1
echo "gpu.py rc=$?" >> "$OUT/gpu.log"
tail -12 "$OUT/gpu.log"
timeout 250 python3 -m pytest -q -p no:cacheprovider -n 8 --timeout 100 --maxfail=30 -W ignore::DeprecationWarning tests > "$OUT/tests.log" 2>&1
echo "pytest rc=$?" >> "$OUT/tests.log"
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -25
