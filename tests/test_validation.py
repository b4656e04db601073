"""Tests of the data contract: layouts, padding and the errors for bad input."""

import numpy as np
import pytest

from skstrf._validation import check_responses, check_stimuli, check_X_y


def _ragged(rng, lengths=(10, 7, 4), F=3, N=2, R=3):
    S, T = len(lengths), max(lengths)
    X = rng.standard_normal((S, T, F))
    y = rng.poisson(1.0, (S, T, N, R)).astype(float)
    for s, n in enumerate(lengths):
        X[s, n:] = np.nan
        y[s, n:] = np.nan
    return X, y


@pytest.mark.parametrize("x_shape, y_shape, layout, y4", [
    ((20, 3), (20,), "neuron", (1, 20, 1, 1)),
    ((20, 3), (20, 2), "psth", (1, 20, 2, 1)),
    ((20, 3), (20, 2, 5), "repeats", (1, 20, 2, 5)),
    ((4, 20, 3), (4, 20), "neuron", (4, 20, 1, 1)),
    ((4, 20, 3), (4, 20, 2), "psth", (4, 20, 2, 1)),
    ((4, 20, 3), (4, 20, 2, 5), "repeats", (4, 20, 2, 5)),
])
def test_layouts_are_brought_to_the_stimulus_layout(x_shape, y_shape, layout, y4):
    rng = np.random.default_rng(0)
    data = check_X_y(rng.standard_normal(x_shape), rng.standard_normal(y_shape))
    assert data.y_layout == layout
    assert data.y.shape == y4
    assert data.X.shape == (y4[0], 20, 3)
    assert data.x_ndim == len(x_shape)
    np.testing.assert_array_equal(data.lengths, 20)


def test_ragged_lengths_and_psth_with_missing_repeats():
    rng = np.random.default_rng(1)
    X, y = _ragged(rng)
    y[1, :7, 0, 2] = np.nan  # a missing repeat
    data = check_X_y(X, y)
    np.testing.assert_array_equal(data.lengths, [10, 7, 4])
    psth = data.psth()
    np.testing.assert_allclose(psth[1, :7, 0], y[1, :7, 0, :2].mean(-1))
    np.testing.assert_allclose(psth[0, :, 1], y[0, :, 1].mean(-1))
    assert np.isnan(psth[2, 4:]).all()
    sub = data.subset(np.array([1, 2]))
    assert sub.X.shape == (2, 7, 3) and sub.y.shape == (2, 7, 2, 3)


def test_dtype_errors():
    with pytest.raises(ValueError, match="Complex data not supported"):
        check_stimuli(np.ones((4, 3), dtype=complex))
    with pytest.raises(ValueError):
        check_stimuli(np.array([["a", "b"], ["c", "d"]], dtype=object))
    with pytest.raises(ValueError, match="fitted with 3"):
        check_stimuli(np.ones((2, 5, 4)), n_freqs=3)
    with pytest.raises(ValueError, match="y is required"):
        check_responses(None, check_stimuli(np.ones((5, 2))))


def test_psth_is_cached_and_subsets_of_contiguous_stimuli_are_views():
    rng = np.random.default_rng(3)
    X, y = _ragged(rng, lengths=(10, 9, 8, 7))
    data = check_X_y(X, y)
    assert data.psth() is data.psth()  # computed once per set
    run = data.subset(np.array([1, 2]))
    assert np.shares_memory(run.X, data.X) and np.shares_memory(run.y, data.y)
    picked = data.subset(np.array([0, 2]))
    assert not np.shares_memory(picked.X, data.X)
    np.testing.assert_array_equal(picked.X[1, :8], X[2, :8])
    one = check_X_y(X, y[..., :1])
    np.testing.assert_array_equal(one.psth(), y[..., 0])


def test_frame_moments_blockwise_equal_the_masked_copy(monkeypatch):
    from skstrf import _moments as moments_module

    monkeypatch.setattr(moments_module, "BLOCK_BYTES", 1)  # one stimulus per block
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 30, 4)) * 3 + 7
    mask = np.arange(30)[None] < np.array([30, 12, 1, 30, 25])[:, None]
    a[~mask] = np.nan
    moments = moments_module.FrameMoments.of(a, mask)
    values = a[mask]
    assert moments.count == values.shape[0]
    np.testing.assert_allclose(moments.mean, values.mean(0), rtol=1e-13)
    np.testing.assert_allclose(moments.m2, ((values - values.mean(0)) ** 2).sum(0), rtol=1e-12)


@pytest.mark.parametrize("block_bytes", [1, 2**30])
def test_response_checks_read_y_blockwise(monkeypatch, block_bytes):
    # the first error of the whole array is reported, whichever block holds it
    from skstrf import _moments as moments_module

    monkeypatch.setattr(moments_module, "BLOCK_BYTES", block_bytes)
    X = np.ones((3, 10, 2))
    X[1, 8:] = np.nan
    y = np.ones((3, 10, 2, 2))
    y[1, 8:] = np.nan
    check_X_y(X, y)
    bad = y.copy()
    bad[2, 3, 1, 0] = np.inf
    bad[0, 2, 0, 1] = np.nan  # also a partial repeat, but infinite values are reported first
    with pytest.raises(ValueError, match="infinite"):
        check_X_y(X, bad)
    bad = y.copy()
    bad[1, 9, 0, 0] = 1.0
    with pytest.raises(ValueError, match="stimulus 1, frame 9"):
        check_X_y(X, bad)
    bad = y.copy()
    bad[2, 0, 1, 1] = 1e30
    with pytest.raises(ValueError, match="values up to 1e"):
        check_X_y(X, bad)


@pytest.mark.parametrize("block_bytes", [1, 2**30])
@pytest.mark.parametrize("lengths", [(10, 10, 10), (10, 7, 4)])
def test_complete_responses_take_the_one_pass_check_with_the_same_psth(monkeypatch, block_bytes, lengths):
    # the PSTH comes from the checking pass itself (cached on the set), equal to the mean
    # over the recorded repeats
    from skstrf import _moments as moments_module

    monkeypatch.setattr(moments_module, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(4)
    X, y = _ragged(rng, lengths=lengths, R=5)
    data = check_X_y(X, y)
    assert "_psth" in data.__dict__  # computed while checking
    expected = np.full(y.shape[:3], np.nan)
    for s, n in enumerate(lengths):
        expected[s, :n] = y[s, :n].mean(-1)
    np.testing.assert_allclose(data.psth(), expected, rtol=1e-15, atol=0)
    one = check_X_y(X, y[..., :1])
    assert np.shares_memory(one.psth(), y)  # one repeat: its own mean, a view
    complete = y.copy()

    y[0, :, 1, 3] = np.nan  # a missing repeat: the same pass, and the mean of the others
    data = check_X_y(X, y)
    assert "_psth" in data.__dict__
    np.testing.assert_allclose(data.psth()[0, :, 1], np.delete(y[0, :, 1], 3, axis=-1).mean(-1))
    # float32 y is read as it is, the PSTH summed in float64
    data32 = check_X_y(X, complete.astype(np.float32))
    assert data32.y.dtype == np.float32 and data32.psth().dtype == np.float64
    np.testing.assert_allclose(data32.psth(), check_X_y(X, complete.astype(np.float32).astype(float)).psth(),
                               rtol=1e-15, equal_nan=True)
    for bad_value, message in ((np.inf, "infinite"), (np.nan, "NaN inside stimulus 2"),
                               (3e19, "values up to 3e"), (-3e19, "values up to 3e")):
        bad = complete.copy()
        bad[2, 1, 0, 0] = bad_value
        with pytest.raises(ValueError, match=message):
            check_X_y(X, bad)
    if lengths[1] < X.shape[1]:
        bad = complete.copy()
        bad[1, -1, 1, 4] = 0.0  # a value on a padding frame
        with pytest.raises(ValueError, match=f"stimulus 1, frame {X.shape[1] - 1}"):
            check_X_y(X, bad)


def test_sums_that_overflow_are_reported_as_too_large():
    # every value finite but their sum over repeats is not: the magnitude is the error
    X = np.ones((2, 5, 2))
    y = np.ones((2, 5, 1, 2))
    y[1, 2, 0] = 1.5e308
    with pytest.raises(ValueError, match="values up to 1.5e"):
        check_X_y(X, y)


def test_read_only_and_reversed_responses_fit_and_score_without_torch_warnings():
    # torch warns once per process about a read-only array it is given: a fresh process,
    # where that warning is an error, fits and scores read-only y of 1 and 4 repeats, and
    # reversed views (negative strides, which torch does not read) of y
    import subprocess
    import sys

    code = """
import warnings
import numpy as np
warnings.filterwarnings("error", message="The given NumPy array is not writable")
from skstrf import STRFRegressor
rng = np.random.default_rng(0)
X = rng.standard_normal((4, 40, 2))
for repeats in (1, 4):
    y = rng.poisson(1.0, (4, 40, 3, repeats)).astype(float)
    y.flags.writeable = False
    est = STRFRegressor(n_lags=3).fit(X, y)
    est.score(X, y)
    reversed_y = np.array(y[::-1, ::-1])[::-1, ::-1]  # the same values, negative strides
    assert reversed_y.strides[0] < 0 and reversed_y.strides[1] < 0
    again = STRFRegressor(n_lags=3).fit(X, reversed_y)
    np.testing.assert_array_equal(again.strfs_, est.strfs_)
    assert again.score(X, reversed_y) == est.score(X, y)
print("ok")
"""
    done = subprocess.run([sys.executable, "-W", "ignore::UserWarning", "-c", code], capture_output=True,
                          text=True, timeout=240, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_tensor_to_read_shares_even_read_only_arrays_and_copies_only_reversed_views():
    import warnings

    from skstrf._validation import tensor_to_read

    a = np.arange(12.0).reshape(3, 4)
    view = tensor_to_read(a)
    a[0, 0] = 7.0
    assert float(view[0, 0]) == 7.0  # the same memory
    a.flags.writeable = False  # a read-only memmap, say: shared, not copied, and no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shared = tensor_to_read(a)
    assert np.shares_memory(shared.numpy(), a)
    reversed_view = np.arange(12.0).reshape(3, 4)[::-1]
    np.testing.assert_array_equal(tensor_to_read(reversed_view).numpy(), reversed_view)


def test_band_names_of_a_dataframe_are_checked_like_scikit_learn():
    import warnings

    pd = pytest.importorskip("pandas")
    from skstrf import STRFRegressor
    from skstrf.datasets import make_strf_dataset

    d = make_strf_dataset(n_stimuli=1, n_times=400, n_freqs=4, n_neurons=2, n_lags=4, random_state=0)
    X, y = d.X[0], d.y[0]  # one continuous recording: frames x bands
    names = ["f0", "f1", "f2", "f3"]
    frame = pd.DataFrame(X, columns=names)
    est = STRFRegressor(n_lags=4).fit(frame, y)
    assert est.feature_names_in_.tolist() == names
    np.testing.assert_array_equal(est.predict(frame), STRFRegressor(n_lags=4).fit(X, y).predict(X))
    with pytest.raises(ValueError, match=r"must be in the same order as they were in fit"):
        est.predict(frame[names[::-1]])
    with pytest.raises(ValueError, match=r"unseen at fit time:\n- g\n.*yet now missing:\n- f3\n"):
        est.score(frame.rename(columns={"f3": "g"}), y)
    with pytest.raises(TypeError, match=r"mix strings with other types \(\['int', 'str'\]\)"):
        STRFRegressor(n_lags=4).fit(pd.DataFrame(X, columns=["f0", 1, "f2", "f3"]), y)
    with pytest.warns(UserWarning, match="does not have band names"):
        est.predict(X)
    # no names: none recorded (integer columns are not names either), none checked
    plain = STRFRegressor(n_lags=4).fit(pd.DataFrame(X), y)
    assert not hasattr(plain, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain.predict(X)
    with pytest.warns(UserWarning, match="X has band names .* fitted without them"):
        plain.predict(frame)
    # a refit without names forgets the old ones
    est.fit(X, y)
    assert not hasattr(est, "feature_names_in_")


def _sum_repeats_layouts(values: np.ndarray) -> dict:
    """float32 ``values`` in every layout the response pass meets: C, Fortran, a strided
    view (every other repeat), and float64 (the same values)."""
    strided = np.full(values.shape[:-1] + (2 * values.shape[-1],), 7.0, dtype=np.float32)
    strided[..., ::2] = values
    return {"C": values, "F": np.asfortranarray(values), "strided": strided[..., ::2],
            "float64": values.astype(np.float64)}


def test_sum_over_repeats_is_float64_and_the_same_in_every_layout(monkeypatch):
    """The chunked sum over repeats accumulates in float64 (equal to numpy's float64 sum
    to rounding, exact on integer counts), gives the same bits whatever y's memory order
    or float dtype, writes the mean into given memory on valid frames only, and never
    writes y."""
    import torch

    from skstrf import _validation
    from skstrf._validation import _sum_repeats

    CHUNK = 8  # frames per chunk: values fall in the first and in later chunks
    monkeypatch.setattr(_validation, "SUM_CHUNK_BYTES", CHUNK * 4 * 6 * 8)
    rng = np.random.default_rng(3)
    shape = (3, 2 * CHUNK + 5, 4, 6)
    values = (rng.standard_normal(shape) * 1e3).astype(np.float32)
    counts = rng.poisson(3.0, size=shape).astype(np.float32)
    sums = {}
    for data in (values, counts):
        reference = data.astype(np.float64).sum(axis=-1)
        results = sums[data is values] = {}
        for layout, y in _sum_repeats_layouts(data).items():
            before = y.copy()
            got, _ = _sum_repeats(torch.from_numpy(y))
            assert got.dtype == torch.float64 and got.shape == shape[:3]
            results[layout] = got.numpy()
            np.testing.assert_array_equal(y, before)  # y itself is never written
        for layout, got in results.items():
            np.testing.assert_array_equal(got, results["C"], err_msg=layout)
        if data is counts:
            np.testing.assert_array_equal(results["C"], reference)  # integers: exact
        else:
            scale = np.abs(data.astype(np.float64)).sum(axis=-1)
            assert np.all(np.abs(results["C"] - reference) <= 1e-14 * scale)
    # the mean written into given memory, on the valid frames only
    lengths = np.array([shape[1], CHUNK + 1, 0])
    out = torch.full(shape[:3], -1.0, dtype=torch.float64)
    mean, _ = _sum_repeats(torch.from_numpy(values), out, shape[-1], lengths)
    assert mean is out
    with pytest.raises(ValueError, match="C-contiguous"):  # sums are written a chunk of frames at a time
        _sum_repeats(torch.from_numpy(values), torch.empty(shape[2], shape[1], shape[0], dtype=torch.float64).T)
    for stimulus, length in enumerate(lengths):
        np.testing.assert_array_equal(out[stimulus, :length].numpy(), sums[True]["C"][stimulus, :length] / shape[-1])
        assert (out[stimulus, length:] == -1.0).all()


@pytest.mark.parametrize("layout", ["C", "F", "strided", "float64"])
def test_sum_over_repeats_reports_the_peak_of_valid_values(layout, monkeypatch):
    """The pass's peak is the exact largest magnitude where values are negative, an upper
    bound of it no larger than the largest sum over repeats where none is, NaN for a NaN and
    inf for an infinite value on a valid frame, and reads nothing beyond each stimulus's
    valid frames."""
    import torch

    from skstrf import _validation
    from skstrf._validation import _sum_repeats

    CHUNK = 8
    monkeypatch.setattr(_validation, "SUM_CHUNK_BYTES", CHUNK * 4 * 6 * 8)
    rng = np.random.default_rng(4)
    shape = (3, 2 * CHUNK + 5, 4, 6)
    lengths = np.array([shape[1], CHUNK + 3, 2])

    def peak_of(data):
        return _sum_repeats(torch.from_numpy(_sum_repeats_layouts(data)[layout]), None, 1, lengths)[1]

    values = (rng.standard_normal(shape) * 1e3).astype(np.float32)
    valid = np.arange(shape[1])[None, :] < lengths[:, None]
    expected = np.abs(values[valid].astype(np.float64)).max()
    values[~valid] = np.nan  # padding: never read
    values[1, CHUNK + 5, 0, 0] = 1e30  # beyond the valid frames of stimulus 1
    assert peak_of(values) == expected
    counts = rng.poisson(3.0, size=shape).astype(np.float32)
    counts[~valid] = np.nan
    sums = counts[valid].astype(np.float64).sum(axis=-1)
    assert counts[valid].max() <= peak_of(counts) <= sums.max()
    for bad, expect in ((np.nan, np.isnan), (np.inf, np.isposinf), (-np.inf, np.isposinf)):
        for data in (values.copy(), counts.copy()):
            data[1, CHUNK + 1, 2, 3] = bad  # in a later chunk of stimulus 1
            assert expect(peak_of(data)), (bad, data is values)


@pytest.mark.parametrize("layout", ["C", "strided", "float64"])
def test_too_large_y_is_refused_in_every_layout(layout):
    """The magnitude check reads its extremes from the one pass over y: a value beyond
    float32's arithmetic is refused wherever it lies, positive or negative, whatever the
    layout, and a valid y one step below the limit is accepted."""
    from skstrf import STRFRegressor
    from skstrf._validation import MAX_ABS_VALUE

    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 40, 4))
    y = rng.standard_normal((3, 40, 2, 6))
    if layout == "strided":
        y = np.repeat(y, 2, axis=-1)[..., ::2]
    elif layout == "C":
        y = y.astype(np.float32)
    for sign, where in ((1.0, (2, 39, 1, 5)), (-1.0, (0, 0, 0, 0))):
        bad = y.copy() if layout != "strided" else np.repeat(y, 2, axis=-1)[..., ::2]
        bad[where] = sign * MAX_ABS_VALUE * 4
        with pytest.raises(ValueError, match="in magnitude"):
            STRFRegressor(n_lags=3, max_epochs=1).fit(X, bad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_negative_y_is_checked_against_its_true_peak(dtype):
    """For non-negative y the one pass bounds each frame's peak by its largest sum over
    repeats; a bound beyond the limit is not an error by itself: values just below the limit,
    whose sums exceed it, are accepted, and a value beyond it is refused with its own size."""
    from skstrf._validation import MAX_ABS_VALUE

    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 30, 4))
    y = rng.poisson(2.0, size=(3, 30, 2, 8)).astype(dtype)
    near = np.float64(dtype(0.9 * MAX_ABS_VALUE))
    high = y.copy()
    high[1, 7, 0, :] = near  # 8 repeats: their sum is 7.2 times the limit
    data = check_X_y(X, high)
    assert data.psth()[1, 7, 0] == pytest.approx(near, rel=1e-6)
    signed = high.copy()
    signed[0, 0, 1, 0] = -near  # a negative value: the exact extremes
    check_X_y(X, signed)
    for value in (np.float64(dtype(2.5 * MAX_ABS_VALUE)), -np.float64(dtype(2.5 * MAX_ABS_VALUE))):
        bad = high.copy()
        bad[2, 3, 1, 4] = value
        with pytest.raises(ValueError, match=r"y has values up to 4\.6\de\+19 in magnitude"):
            check_X_y(X, bad)
