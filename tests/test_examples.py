"""Run every script of examples/ in its quick mode and check the figures it writes."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import ns1_fixture  # noqa: E402
import pytest  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# What each example must write (besides what it prints), and a line it must print.
EXPECTED = {
    "plot_compare_kernels": (["history.png", "paired_scores.png", "best_cell_strfs.png", "results.json",
                              "true_vs_fitted.png", "prediction.png"], "parameterization"),
    "plot_grid_search": (["cv_alpha.png", "cv_candidates.png", "best_strfs.png"], "test cc_norm of the best model"),
    "plot_pipeline_preprocessing": (["cv_preprocessing.png", "best_pipeline_strfs.png"],
                                    "test cc_norm of the best pipeline"),
    "plot_cross_validate": (["score_hist.png", "per_neuron.png"], "separable - vanilla"),
    "plot_own_data_hdf5": (["my_recordings.h5", "strfs.png", "prediction.png", "compare/history.png",
                            "compare/paired_scores.png", "compare/best_cell_strfs.png"], "test cc_norm"),
    "plot_ns1": (["history.png", "paired_scores.png", "best_cell_strfs.png", "best_units_strfs.png",
                  "best_unit_prediction.png"], "seed notebook"),
}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # Quick-mode problems are tiny: with several threads torch spends more time starting
    # and synchronising them than computing (up to 100x slower on a busy 2-core machine).
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run(name: str, output: Path, monkeypatch, quick_flag: bool = True) -> None:
    flags = ["--quick"] if quick_flag else []
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *flags, "--output", str(output)])
    try:
        runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    finally:
        plt.close("all")


def _check_outputs(name: str, output: Path, printed: str) -> None:
    files, line = EXPECTED[name]
    assert line in printed
    for file in files:
        path = output / file
        assert path.is_file(), f"{name} did not write {file}"
        if path.suffix == ".png":
            image = matplotlib.image.imread(path)
            # A real figure: several hundred pixels a side and more than one colour.
            assert min(image.shape[:2]) > 200
            assert image.reshape(-1, image.shape[-1]).std(axis=0).max() > 0.05


def test_every_example_is_tested():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    assert scripts == set(EXPECTED)
    for name in scripts:
        source = (EXAMPLES / f"{name}.py").read_text()
        # sphinx-gallery needs a docstring with a title; the scripts need both options.
        assert source.startswith('"""\n') and "\n====" in source.split('"""')[1]
        assert "--quick" in source and "--output" in source and "SKSTRF_QUICK" in source


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - {"plot_ns1"}))
def test_example_runs_in_quick_mode(name, tmp_path, monkeypatch, capsys):
    output = tmp_path / "out"
    # One example takes quick mode from the environment instead of the flag.
    from_env = name == "plot_cross_validate"
    if from_env:
        monkeypatch.setenv("SKSTRF_QUICK", "1")
    _run(name, output, monkeypatch, quick_flag=not from_env)
    printed = capsys.readouterr().out
    _check_outputs(name, output, printed)
    if from_env:
        assert "cc_norm per fold (2, 6)" in printed  # 2 folds, 6 neurons: the quick data


def test_ns1_example_explains_how_to_get_the_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKSTRF_DATA", str(tmp_path / "data"))
    with pytest.raises(SystemExit) as stop:
        _run("plot_ns1", tmp_path / "out", monkeypatch)
    assert stop.value.code == 0
    printed = capsys.readouterr().out
    assert "NS1 is not available here" in printed
    assert "https://osf.io/download/5nxga/" in printed and "--download" in printed
    assert not (tmp_path / "out").exists()  # nothing fitted, nothing written


# 6 frames and 4 repeats: some units have no measurable signal power, as expected.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_ns1_example_runs_on_a_miniature_ns1(tmp_path, monkeypatch, capsys):
    ns1_fixture.write_ns1_fixture(tmp_path / "data" / "ns1")
    monkeypatch.setenv("SKSTRF_DATA", str(tmp_path / "data"))
    output = tmp_path / "out"
    _run("plot_ns1", output, monkeypatch)
    _check_outputs("plot_ns1", output, capsys.readouterr().out)
