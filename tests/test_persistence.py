"""Tests of pickle and joblib persistence, including a CUDA-fitted model loaded without CUDA.

The one place for round-trip tests: every kind of fitted model (closed form, gradient,
parametric, LN) pickles, and a CUDA fit is tested for real where CUDA exists.
"""

import io
import os
import pickle
import subprocess
import sys
import textwrap
from contextlib import contextmanager

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.base import clone

from skstrf import STRFRegressor

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize("params", [
    dict(kernel="vanilla"),
    dict(kernel="separable"),
    dict(kernel="separable", solver="gradient", max_epochs=3),
    dict(kernel="parametric", n_gaussians=2, max_epochs=3),
    dict(kernel="vanilla", nonlinearity="softplus", max_epochs=2),
])
def test_pickle_and_joblib_round_trips_predict_identically(data, params, tmp_path):
    est = STRFRegressor(n_lags=6, random_state=0, **params).fit(data.X, data.y)
    expected = est.predict(data.X)
    loaded = pickle.loads(pickle.dumps(est))
    joblib.dump(est, tmp_path / "est.joblib")
    from_disk = joblib.load(tmp_path / "est.joblib")
    for other in (loaded, from_disk):
        assert_array_equal(other.predict(data.X), expected)
        assert_array_equal(other.strfs_, est.strfs_)
        assert other.score(data.X, data.y) == est.score(data.X, data.y)
        assert other.history_ is other.net_.history_  # one object, as before pickling
        assert other.history_[:, "train_loss"] == est.history_[:, "train_loss"]
        assert other.get_params() == est.get_params()


def test_clone_refits_identically(data):
    # Same random_state on CPU: a clone refits to the very same STRFs (shuffling included).
    est = STRFRegressor(kernel="separable", solver="gradient", n_lags=6, max_epochs=3,
                        random_state=0).fit(data.X, data.y)
    twin = clone(pickle.loads(pickle.dumps(est))).fit(data.X, data.y)
    assert_array_equal(twin.strfs_, est.strfs_)


def test_unfitted_estimator_pickles():
    est = STRFRegressor(kernel="separable", n_lags=4, optimizer__betas=(0.8, 0.9))
    loaded = pickle.loads(pickle.dumps(est))
    assert loaded.get_params() == est.get_params()
    assert not hasattr(loaded, "net_")
    assert pickle.loads(pickle.dumps(clone(est))).get_params() == est.get_params()


def test_fitted_estimator_keeps_training_after_unpickling(data):
    est = STRFRegressor(n_lags=6, solver="gradient", max_epochs=3, patience=None,
                        warm_start=True, random_state=0).fit(data.X, data.y)
    loaded = pickle.loads(pickle.dumps(est)).fit(data.X, data.y)
    assert len(loaded.history_) == 6
    assert loaded.history_[-1, "train_loss"] < est.history_[-1, "train_loss"]


@contextmanager
def _storages_tagged_as_cuda():
    """Make torch serialisation record every CPU storage as living on "cuda:0".

    On a machine without a GPU this produces the bytes a CUDA-fitted model pickles to:
    loading them without a ``map_location`` fails as it would on a CPU-only machine.
    """
    def tagger(storage):
        return "cuda:0" if storage.device.type == "cpu" else None

    def deserializer(storage, location):
        return None  # leave loading to torch's own deserializers

    entry = (1, tagger, deserializer)
    torch.serialization._package_registry.insert(0, entry)
    try:
        yield
    finally:
        torch.serialization._package_registry.remove(entry)


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a machine without CUDA")
def test_cuda_fitted_estimator_unpickles_on_a_cpu_only_machine(data):
    # What is verified: bytes whose every tensor is recorded as a CUDA tensor, with the
    # estimator and its skorch net saying device "cuda", load and predict on CPU. What is
    # not: an actual CUDA fit (no GPU here).
    est = STRFRegressor(n_lags=6, kernel="parametric", n_gaussians=2, max_epochs=3,
                        random_state=0).fit(data.X, data.y)
    expected = est.predict(data.X)
    est.device_, est.net_.device = "cuda", "cuda"
    with _storages_tagged_as_cuda():
        blob = pickle.dumps(est)
        buffer = io.BytesIO()
        torch.save(torch.ones(2), buffer)
    # The simulation is faithful: such bytes fail without remapping ...
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    # ... and the estimator remaps them to the CPU, with skorch's warning about it.
    with pytest.warns(UserWarning, match="no CUDA devices are available"):
        loaded = pickle.loads(blob)
    assert loaded.device_ == "cpu" and torch.device(loaded.net_.device).type == "cpu"
    assert loaded.device == "auto"  # the parameter is kept: a refit picks what it finds
    assert next(loaded.net_.module_.parameters()).device.type == "cpu"
    assert_array_equal(loaded.predict(data.X), expected)


_LOAD_ON_CPU = textwrap.dedent("""
    import pickle, sys, warnings
    import numpy as np
    import torch
    assert not torch.cuda.is_available()
    with open(sys.argv[1], "rb") as fh:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = pickle.load(fh)
    X = np.load(sys.argv[2])
    assert est.device_ == "cpu", est.device_
    np.save(sys.argv[3], est.predict(X))
""")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("params", [
    dict(kernel="vanilla"),
    dict(kernel="parametric", n_gaussians=2, max_epochs=3),
])
def test_cuda_fitted_estimator_round_trips_on_cuda_and_on_a_cpu_only_process(data, params, tmp_path):
    est = STRFRegressor(n_lags=6, random_state=0, device="cuda", **params).fit(data.X, data.y)
    assert est.device_.startswith("cuda")
    assert next(est.net_.module_.parameters()).device.type == "cuda"
    expected = est.predict(data.X)
    # On the same machine the model stays on the GPU and predicts the same.
    again = pickle.loads(pickle.dumps(est))
    assert again.device_.startswith("cuda")
    assert next(again.net_.module_.parameters()).device.type == "cuda"
    assert_array_equal(again.predict(data.X), expected)
    # In a process that sees no GPU the very bytes load on the CPU and predict the same
    # (up to float32 rounding between the CUDA and CPU kernels).
    blob, X_path, out = tmp_path / "est.pkl", tmp_path / "X.npy", tmp_path / "pred.npy"
    blob.write_bytes(pickle.dumps(est))
    np.save(X_path, data.X)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run([sys.executable, "-c", _LOAD_ON_CPU, str(blob), str(X_path), str(out)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-4, atol=1e-5 * np.nanmax(np.abs(expected)))
