"""Per-neuron reference optima of the static nonlinearities' calibration (``calibrate_``),
for the tests, and the measurement of how far the calibration ends from them.

Run as a script, it prints, for cells of :mod:`skstrf.datasets` (a ridge STRF's prediction as
the linear drive), each calibration's loss excess over the reference, relative to the loss's
reducible part (the constant rate's loss minus the reference's)::

    PYTHONPATH=. python tests/calibration_reference.py

With ``--time OLD_FILE`` (another version of ``skstrf/nonlinearities.py``, e.g. from
``git show REV:skstrf/nonlinearities.py``) it times both versions' calibrations instead, on
16 cells of ``make_realistic_dataset("stimuli")`` and on 200 000 frames of 32 cells.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize

from skstrf.nonlinearities import Exponential, Softplus, _below, _loss_per_neuron


@torch.no_grad()
def softplus_loss(nl: Softplus, z: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Each neuron's loss (float64, masked sums) of ``nl``'s current parameters."""
    scale = nl.scale.double()
    rate = scale * nl.log_gain.double().exp() * torch.nn.functional.softplus(
        nl.log_slope.double().exp() * z.double() / scale + nl.offset.double())
    mask = torch.isfinite(y)
    return _loss_per_neuron(rate, torch.where(mask, y.double(), 0.0), mask, loss)


@torch.no_grad()
def exponential_loss(nl: Exponential, z: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Each neuron's loss (float64, masked sums) of ``nl``'s current parameters."""
    r0 = nl.reference.double()
    rate = r0 * torch.exp(nl.log_slope.double().exp() * (z.double() - r0) / r0 + nl.offset.double())
    mask = torch.isfinite(y)
    return _loss_per_neuron(rate, torch.where(mask, y.double(), 0.0), mask, loss)


def null_loss(y: torch.Tensor, loss: str) -> torch.Tensor:
    """Each neuron's loss of its best constant rate (its mean)."""
    mask = torch.isfinite(y)
    y = torch.where(mask, y.double(), 0.0)
    mean = (y.sum(0) / mask.sum(0)).clamp(min=1e-300)
    return _loss_per_neuron(mean.expand_as(y), y, mask, loss)


def _minimise(f, starts) -> tuple[np.ndarray, float]:
    """The best of scipy's exact-Hessian trust-region Newton (``trust-exact``) from each start;
    ``f`` maps a float64 tensor of parameters to the loss."""
    best_x, best_f = None, np.inf

    def fun(x):
        value = f(torch.as_tensor(x, dtype=torch.float64))
        return float(value) if torch.isfinite(value) else 1e300

    def jac(x):
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        value = f(t)
        value.backward()
        return np.nan_to_num(t.grad.numpy())

    def hess(x):
        return np.nan_to_num(torch.autograd.functional.hessian(f, torch.as_tensor(x, dtype=torch.float64)).numpy())

    for x0 in starts:
        r = minimize(fun, x0, jac=jac, hess=hess, method="trust-exact", options=dict(maxiter=500, gtol=1e-10))
        if r.fun < best_f:
            best_x, best_f = r.x, float(r.fun)
    return best_x, best_f


def softplus_reference(nl: Softplus, z: torch.Tensor, y: torch.Tensor, loss: str) -> np.ndarray:
    """Each neuron's minimum of the calibration's loss within its bounds, by scipy, one
    neuron at a time, from the calibrated parameters and from a few others."""
    scale = nl.scale.double()
    u = z.double() / scale
    limits = nl._limits(u, y.double())
    mask = torch.isfinite(y)
    target = torch.where(mask, y.double(), 0.0)
    out = np.empty(y.shape[1])
    for n in range(y.shape[1]):
        lim = limits[:, n]

        def f(t, n=n, lim=lim):
            log_g, log_b = _below(t[:2], lim)
            rate = scale[n] * log_g.exp() * torch.nn.functional.softplus(log_b.exp() * u[:, n] + t[2])
            return _loss_per_neuron(rate[:, None], target[:, n:n + 1], mask[:, n:n + 1], loss)[0]

        # the calibrated values in the unbounded variables
        cal = torch.stack([nl.log_gain[n].double(), nl.log_slope[n].double()]).detach()
        gap = (lim - cal).clamp(min=1e-12)
        t_cal = lim - torch.where(gap > 30, gap, torch.log(torch.expm1(gap.clamp(max=30))))
        starts = [np.r_[t_cal.numpy(), float(nl.offset[n].detach())]]
        starts += [np.array([-np.log(b), np.log(b), c]) for b in (0.3, 1.0, 4.0) for c in (-2.0, 0.0, 2.0)]
        out[n] = _minimise(f, starts)[1]
    return out


def exponential_reference(nl: Exponential, z: torch.Tensor, y: torch.Tensor, loss: str) -> np.ndarray:
    r0 = nl.reference.double()
    u = (z.double() - r0) / r0
    mask = torch.isfinite(y)
    target = torch.where(mask, y.double(), 0.0)
    out = np.empty(y.shape[1])
    for n in range(y.shape[1]):
        def f(t, n=n):
            rate = r0[n] * torch.exp(t[0].exp() * u[:, n] + t[1])
            return _loss_per_neuron(rate[:, None], target[:, n:n + 1], mask[:, n:n + 1], loss)[0]
        starts = [np.array([float(nl.log_slope[n].detach()), float(nl.offset[n].detach())])]
        starts += [np.array([np.log(b), 0.0]) for b in (0.01, 0.1, 1.0)]
        out[n] = _minimise(f, starts)[1]
    return out


def linear_drive(X, y, n_lags: int, random_state: int = 0):
    """A ridge STRF's prediction ``z`` and the PSTH ``p`` on every valid frame, (frames, neurons)."""
    import warnings

    from skstrf import STRFRegressor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = STRFRegressor(n_lags=n_lags, random_state=random_state).fit(X, y)
        z = est.predict(X)
    with warnings.catch_warnings():  # padding frames are all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        psth = np.nanmean(y, axis=-1) if y.ndim == z.ndim + 1 else y
    if z.ndim == 2:
        z, psth = z[None], psth[None]
    keep = np.isfinite(z).all(-1) & np.isfinite(psth).all(-1)
    return torch.as_tensor(z[keep]), torch.as_tensor(psth[keep])


def cases():
    """(name, z, psth) of a few cells of skstrf.datasets with several nonlinearities."""
    from skstrf.datasets import make_realistic_dataset, make_strf_dataset
    out = []
    for nonlinearity in ("relu", "exp", "softplus"):
        d = make_strf_dataset(n_stimuli=8, n_times=400, n_freqs=12, n_neurons=8, n_repeats=10, n_lags=8,
                              nonlinearity=nonlinearity, random_state=3)
        out.append((f"strf-{nonlinearity}", *linear_drive(d.X, d.y, 8)))
    for nonlinearity in ("softplus", "threshold-power", "exp"):
        d = make_realistic_dataset("continuous", nonlinearity=nonlinearity, random_state=3)
        out.append((f"realistic-continuous-{nonlinearity}", *linear_drive(d.X, d.y, 20)))
    return out


def measure(z, p, loss):
    """Relative excess loss of Softplus and Exponential calibrations over the reference."""
    scale = torch.as_tensor(np.nanstd(p.numpy(), axis=0))
    mean = torch.as_tensor(np.nanmean(p.numpy(), axis=0))
    rows = {}
    for name, nl, own, ref in (("softplus", Softplus(scale), softplus_loss, softplus_reference),
                               ("exp", Exponential(torch.where(mean > 0, mean, scale)), exponential_loss,
                                exponential_reference)):
        nl.calibrate_(z.float(), p.float(), loss)
        value = own(nl, z.float(), p.float(), loss).numpy()
        best = ref(nl, z.float(), p.float(), loss)
        null = null_loss(p.float(), loss).numpy()
        rows[name] = (value - best) / np.abs(null - best)
    return rows


def time_against(old_file: str) -> None:
    """Time and check the calibrations of ``old_file``'s nonlinearities and of skstrf's."""
    import importlib.util
    import time

    from skstrf import nonlinearities as new
    from skstrf.datasets import make_realistic_dataset
    spec = importlib.util.spec_from_file_location("old_nonlinearities", old_file)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    d = make_realistic_dataset("stimuli", n_neurons=16, random_state=5)
    z, p = (t.float() for t in linear_drive(d.X, d.y, 20))
    scale, mean = p.double().std(0), p.double().mean(0)
    null = {loss: null_loss(p, loss).numpy() for loss in ("mse", "poisson")}
    for loss in ("mse", "poisson"):
        for version, module in (("old", old), ("new", new)):
            for kind, arg, own, ref in (("Softplus", scale, softplus_loss, softplus_reference),
                                        ("Exponential", torch.where(mean > 0, mean, scale), exponential_loss,
                                         exponential_reference)):
                fitted = getattr(module, kind)(arg)
                start = time.perf_counter()
                fitted.calibrate_(z, p, loss)
                seconds = time.perf_counter() - start
                nl = getattr(new, kind)(arg)
                nl.load_state_dict(fitted.state_dict())
                value, best = own(nl, z, p, loss).numpy(), ref(nl, z, p, loss)
                excess = (value - best) / np.abs(null[loss] - best)
                print(f"songs {tuple(z.shape)} {loss:7s} {version} {kind:11s} {seconds:6.2f} s, "
                      f"max relative excess {excess.max():.2e}")
    rng = np.random.default_rng(0)
    zz = torch.as_tensor(rng.standard_normal((200_000, 32)))
    pp = torch.nn.functional.softplus(2 * zz - 1) + 0.3 * torch.as_tensor(rng.standard_normal((200_000, 32)))
    for version, module in (("old", old), ("new", new)):
        start = time.perf_counter()
        module.Softplus(pp.std(0)).calibrate_(zz.float(), pp.float(), "mse")
        print(f"softplus 200000 x 32 mse {version} {time.perf_counter() - start:6.2f} s")


if __name__ == "__main__":
    import sys

    torch.set_num_threads(1)
    if len(sys.argv) == 3 and sys.argv[1] == "--time":
        time_against(sys.argv[2])
        sys.exit()
    for name, z, p in cases():
        for loss in ("mse", "poisson"):
            if loss == "poisson" and (p < 0).any():
                continue
            rows = measure(z, p, loss)
            for nl, excess in rows.items():
                print(f"{name:34s} {loss:7s} {nl:8s} max relative excess {excess.max():.2e} "
                      f"(neurons above 1e-3: {(excess > 1e-3).sum()}/{excess.size})")
