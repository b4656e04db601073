"""The cross-correlation statistics equal the direct ones; the custom loss equals autograd's."""

import pytest
import torch

from skstrf._design import design_statistics, lagged_statistics
from skstrf._losses import statistics_loss
from skstrf._penalty import Penalty, QuadraticForm
from skstrf._threads import task_workers_set


def _problem(lengths, n_times, n_freqs=3, n_neurons=2, seed=0):
    """Ragged stimuli (zero / NaN padding), non-trivial standardisation, float64."""
    g = torch.Generator().manual_seed(seed)
    S = len(lengths)
    mask = (torch.arange(n_times)[None] < torch.tensor(lengths)[:, None]).double()
    X = (torch.randn(S, n_times, n_freqs, generator=g, dtype=torch.float64) + 2.0) * mask[..., None]
    P = torch.randn(S, n_times, n_neurons, generator=g, dtype=torch.float64) * 3.0 + 1.0
    P[mask == 0] = float("nan")
    x_mean = torch.rand(n_freqs, generator=g, dtype=torch.float64) + 1.5
    x_scale = torch.rand(n_freqs, generator=g, dtype=torch.float64) + 0.5
    y_mean = torch.rand(n_neurons, generator=g, dtype=torch.float64)
    y_scale = torch.rand(n_neurons, generator=g, dtype=torch.float64) + 0.5
    return X, P, mask, x_mean, x_scale, y_mean, y_scale


def _assert_same(expected, actual):
    for name in ("gram", "cross", "sq", "count"):
        a, b = getattr(expected, name), getattr(actual, name)
        assert a.shape == b.shape and b.dtype == torch.float64, name
        torch.testing.assert_close(b, a, rtol=0, atol=1e-9 * float(a.abs().max()), msg=name)


@pytest.mark.parametrize("n_blocks", [1, 3])
@pytest.mark.parametrize("n_lags", [1, 4, 9])
@pytest.mark.parametrize("lengths", [[16], [16, 11, 5, 2]])
def test_lagged_statistics_equal_direct(lengths, n_lags, n_blocks, monkeypatch):
    # n_lags 9 reaches past the whole of the short stimuli and of every block
    monkeypatch.setattr("skstrf._design.SIDE_BY_SIDE_FLOP", 0.0)  # side by side however small
    X, P, mask, *units = _problem(lengths, n_times=16)
    expected = design_statistics(X, P, mask, n_lags, *units, n_blocks=n_blocks)
    _assert_same(expected, lagged_statistics(X, P, mask, n_lags, *units, n_blocks=n_blocks))
    # a chunk of rows shorter than the lags alone (one row per chunk), chunks side by side
    for workers in (1, 2):
        with task_workers_set(workers):
            _assert_same(expected, lagged_statistics(X, P, mask, n_lags, *units, n_blocks=n_blocks, chunk=1))


def test_lagged_statistics_ignore_padding_values_and_float32():
    X, P, mask, *units = _problem([12, 7], n_times=12)
    expected = lagged_statistics(X, P, mask, 5, *units)
    X_dirty = X.clone()
    X_dirty[1, 7:] = 123.0  # never read: padding frames are not in any valid frame's history
    _assert_same(expected, lagged_statistics(X_dirty, P, mask, 5, *units))
    # float32 inputs are accumulated in float64 from their exact values
    X32, P32 = X.float(), P.float()
    direct = design_statistics(X32.double(), P32.double(), mask, 5, *units)
    _assert_same(direct, lagged_statistics(X32, P32, mask.float(), 5, *units))


def test_lagged_statistics_non_prefix_mask_falls_back():
    X, P, mask, *units = _problem([10, 10], n_times=10)
    mask[0, 3] = 0.0
    _assert_same(design_statistics(X, P, mask, 3, *units), lagged_statistics(X, P, mask, 3, *units))


def _theta_and_batch(n_neurons=3, seed=1):
    X, P, mask, *units = _problem([14, 9, 12], n_times=14, n_neurons=n_neurons, seed=seed)
    stats = lagged_statistics(X, P, mask, 3, *units)
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(n_neurons, stats.gram.shape[1], generator=g, dtype=torch.float64)
    return stats, theta


def _penalised(weight, bias, batch, alpha):
    """The statistics loss plus the penalty, as the net adds them."""
    form = QuadraticForm((1, weight.shape[1], 1))
    return statistics_loss(weight, bias, *batch) + Penalty(form, alpha).value(weight)


def _plain_loss(theta, gram, cross, sq, count, alpha):
    """The penalised statistics loss, differentiated by autograd."""
    quad = ((theta @ gram) * theta).sum(dim=1)
    lin = (theta * cross.T).sum(dim=1)
    n = theta.shape[0]
    return (quad - 2.0 * lin + sq).sum() / (count * n) + (alpha * (theta[:, :-1] ** 2).sum(dim=1)).sum() / n


@pytest.mark.parametrize("alpha", [0.0, 0.3, "per-neuron"])
@pytest.mark.parametrize("index", [[1], [0, 1], [2, 0]])
def test_statistics_loss_value_and_gradient(alpha, index):
    stats, theta = _theta_and_batch()
    alpha = torch.tensor([0.1, 0.0, 2.0], dtype=torch.float64) if alpha == "per-neuron" else alpha
    batch = stats.summed(torch.tensor(index))
    for a, b in zip(batch, (x[torch.tensor(index)].sum(0) for x in (stats.gram, stats.cross, stats.sq, stats.count))):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-12)
    weight = theta[:, :-1].clone().requires_grad_(True)
    bias = theta[:, -1].clone().requires_grad_(True)
    t2 = theta.clone().requires_grad_(True)
    loss = _penalised(weight, bias, batch, alpha)
    expected = _plain_loss(t2, *batch, torch.as_tensor(alpha, dtype=torch.float64))
    loss.backward()
    expected.backward()
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(torch.cat([weight.grad, bias.grad[:, None]], dim=1), t2.grad,
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.5, "per-neuron"])
def test_statistics_loss_gradcheck(alpha):
    stats, theta = _theta_and_batch(n_neurons=2)
    alpha = torch.tensor([0.2, 1.5], dtype=torch.float64) if alpha == "per-neuron" else alpha
    batch = stats.summed(torch.tensor([0, 2]))
    weight = theta[:, :-1].clone().requires_grad_(True)
    bias = theta[:, -1].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda w, b: _penalised(w, b, batch, alpha), (weight, bias))


def test_statistics_loss_float32_statistics():
    """float32 statistics give float32 gradients within float32 rounding of the float64 ones,
    and a loss whose terms are combined in float64."""
    stats, theta = _theta_and_batch()
    batch = stats.summed(torch.tensor([1]))
    single = tuple(a.float() for a in batch[:2]) + batch[2:]
    grads, losses = [], []
    for b, dtype in ((batch, torch.float64), (single, torch.float32)):
        weight = theta[:, :-1].to(dtype).requires_grad_(True)
        bias = theta[:, -1].to(dtype).requires_grad_(True)
        loss = _penalised(weight, bias, b, 0.3)
        loss.backward()
        assert loss.dtype == torch.float64 and weight.grad.dtype == bias.grad.dtype == dtype
        grads.append(torch.cat([weight.grad, bias.grad[:, None]], dim=1).double())
        losses.append(float(loss.detach()))
    scale = grads[0].abs().max()
    torch.testing.assert_close(grads[1] / scale, grads[0] / scale, rtol=0, atol=1e-5)
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_summed_rows_of_one_stimulus_are_a_view():
    stats, _ = _theta_and_batch()
    for a, b in zip(stats.summed(torch.tensor([1])), (stats.gram, stats.cross, stats.sq, stats.count)):
        assert a.data_ptr() == b[1].data_ptr()


def test_summed_scattered_rows_do_not_alias():
    stats, _ = _theta_and_batch()
    before = stats.gram.clone()
    gram, *_ = stats.summed(torch.tensor([2, 0]))
    gram.add_(1.0)
    torch.testing.assert_close(stats.gram, before, rtol=0, atol=0)


@pytest.mark.parametrize("chunk", [1, 3, None])
@pytest.mark.parametrize("n_blocks", [1, 2])
def test_grouped_statistics_equal_summed_rows(chunk, n_blocks, monkeypatch):
    monkeypatch.setattr("skstrf._design.SIDE_BY_SIDE_FLOP", 0.0)  # side by side however small
    # ragged stimuli, groups that are not contiguous, one group left empty
    X, P, mask, *units = _problem([16, 11, 5, 16, 9], n_times=16)
    rows = lagged_statistics(X, P, mask, 4, *units, n_blocks=n_blocks)
    groups = torch.tensor([2, 0, 2, 3, 0, 3, 2, 0, 0, 3])[:5 * n_blocks]
    grouped = lagged_statistics(X, P, mask, 4, *units, n_blocks=n_blocks, chunk=chunk, groups=groups,
                                n_groups=5)
    _assert_same(rows.sum_rows(groups, 5), grouped)
    # chunks side by side sum into the same groups
    with task_workers_set(3):
        _assert_same(grouped, lagged_statistics(X, P, mask, 4, *units, n_blocks=n_blocks, chunk=chunk,
                                                groups=groups, n_groups=5))
    assert float(grouped.gram[1].abs().max()) == 0.0  # group 1 has no row


def test_chunks_side_by_side_sum_into_groups_in_chunk_order(monkeypatch):
    # the first chunk is made to finish last: its groups' totals are still summed in chunk
    # order, so that the result equals the one-thread result to the last bit
    import time

    from skstrf import _design as gram

    monkeypatch.setattr(gram, "SIDE_BY_SIDE_FLOP", 0.0)  # side by side however small
    X, P, mask, *units = _problem([16, 11, 5, 16, 9, 14, 16, 7, 12, 16], n_times=16, seed=3)
    groups = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])  # every group in 3 chunks or more
    with task_workers_set(1):
        serial = lagged_statistics(X, P, mask, 4, *units, chunk=2, groups=groups)
    row_pieces = gram._row_pieces

    def late_first_chunk(X, P, stim, *args):
        if int(stim[0]) == 0:
            time.sleep(0.2)
        return row_pieces(X, P, stim, *args)

    monkeypatch.setattr(gram, "_row_pieces", late_first_chunk)
    with task_workers_set(2):
        side = lagged_statistics(X, P, mask, 4, *units, chunk=2, groups=groups)
    for name in ("gram", "cross", "sq", "count"):
        assert torch.equal(getattr(side, name), getattr(serial, name)), name


def test_a_failing_chunk_fails_the_statistics_without_waiting(monkeypatch):
    from skstrf import _design as gram

    monkeypatch.setattr(gram, "SIDE_BY_SIDE_FLOP", 0.0)  # side by side however small
    X, P, mask, *units = _problem([16, 11, 5, 16, 9, 14], n_times=16)

    def broken(X, P, stim, *args):
        if int(stim[0]) == 0:
            raise RuntimeError("chunk failed")
        return row_pieces(X, P, stim, *args)

    row_pieces = gram._row_pieces
    monkeypatch.setattr(gram, "_row_pieces", broken)
    with pytest.raises(RuntimeError, match="chunk failed"):
        with task_workers_set(2):
            lagged_statistics(X, P, mask, 4, *units, chunk=1, groups=torch.zeros(6, dtype=torch.long))


def test_grouped_statistics_reject_groups_of_the_wrong_length():
    X, P, mask, *units = _problem([16, 11], n_times=16)
    with pytest.raises(ValueError, match="one per row"):
        lagged_statistics(X, P, mask, 4, *units, groups=torch.zeros(3, dtype=torch.long))
