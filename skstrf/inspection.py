"""Inspection of fitted STRF estimators: gradient maps, the linear stage and the output nonlinearity."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from ._model import module_input, module_statistics
from ._layout import to_user_layout
from ._solvers import SOLVERS
from ._validation import check_responses

__all__ = ["gradient_maps", "linear_drive", "output_nonlinearity", "jackknife_strfs",
           "significance_mask"]

# Rows (neuron x window pairs) per forward pass of the data-dependent gradient map: bounds
# memory, which grows with rows x frames x bands x lags.
_ROWS_PER_PASS = 2048


def _final_estimator(estimator):
    """The fitted STRF estimator inside ``estimator`` and the transform that feeds it.

    Accepts a fitted estimator of ours, a fitted :class:`~sklearn.pipeline.Pipeline` ending
    in one (its earlier steps transform X), or a fitted search (``best_estimator_``).
    """
    transform = None
    if hasattr(estimator, "best_estimator_"):
        estimator = estimator.best_estimator_
    if hasattr(estimator, "steps"):
        head = estimator[:-1]
        transform = head.transform if len(head) else None
        estimator = estimator.steps[-1][1]
    check_is_fitted(estimator, "net_")
    return estimator, transform


def _module(estimator) -> torch.nn.Module:
    return estimator.net_.module_


def _stimuli(estimator, transform, X):
    """Validated stimuli of ``X`` as seen by the final estimator (after ``transform``)."""
    if transform is not None:
        X = transform(X)
    return estimator.check_stimuli(X)


def _baseline_input(baseline, n_rows: int, n_frames: int, n_freqs: int, module) -> torch.Tensor:
    """A constant input (n_rows, n_frames, n_freqs) at ``baseline`` (scalar or per band, in
    the data's units), in ``module``'s units."""
    try:
        level = np.asarray(baseline, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"baseline must be a number or an array of numbers of shape (n_freqs,) "
                        f"= ({n_freqs},), in X's units; got {baseline!r}") from None
    if level.ndim == 0:
        level = np.full(n_freqs, float(level))
    if level.shape != (n_freqs,):
        raise ValueError(
            f"baseline must be a number or an array of shape (n_freqs,) = ({n_freqs},); "
            f"got shape {level.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(level))
    if bad.size:
        what = "NaN" if np.isnan(level[bad[0]]) else "an infinite value"
        raise ValueError(
            f"baseline is {what} at band {bad[0]} ({bad.size} of {n_freqs} bands are not finite); "
            "it is the constant input level in X's units (0.0 for silence). From NaN-padded "
            "stimuli, take the mean over their valid frames: np.nanmean(X, axis=(0, 1))."
        )
    row = torch.as_tensor(module_input(level, module), device=module.x_offset.device)
    return row.expand(n_rows, n_frames, n_freqs).clone()


def _last_frame_gradient(module: torch.nn.Module, inputs: torch.Tensor, n_neurons: int) -> torch.Tensor:
    """Gradient of neuron n's output at the last frame w.r.t. its own input rows.

    Parameters
    ----------
    inputs : Tensor of shape (n_neurons, n_windows, n_frames, n_freqs)
        Row block ``n`` is fed to the model and only neuron ``n``'s output is kept, so one
        backward pass serves every neuron.

    Returns
    -------
    Tensor of shape (n_neurons, n_windows, n_frames, n_freqs)
    """
    inputs = inputs.detach().requires_grad_(True)
    n_windows, n_frames, n_freqs = inputs.shape[1:]
    out = module(inputs.reshape(-1, n_frames, n_freqs))[:, -1, :]  # (N * W, N)
    out = out.reshape(n_neurons, n_windows, n_neurons)
    own = out.diagonal(dim1=0, dim2=2)  # (W, N): neuron n's output on its own rows
    (grad,) = torch.autograd.grad(own.sum(), inputs)
    return grad


def _to_maps(grad: torch.Tensor) -> np.ndarray:
    """(n_neurons, n_frames, n_freqs) gradients -> (n_neurons, n_freqs, n_lags), lag 0 first."""
    return grad.flip(1).transpose(1, 2).cpu().numpy().astype(np.float64)


def _windows(X: np.ndarray, lengths: np.ndarray, n_frames: int, max_windows: int | None) -> np.ndarray:
    """Every ``n_frames``-frame window that ends on a valid frame and starts inside its stimulus.

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_times, n_freqs)
    lengths : ndarray of int of shape (n_stimuli,)

    Returns
    -------
    windows : ndarray of shape (n_windows, n_frames, n_freqs)
        At most ``max_windows``, evenly spaced over all of them when there are more.
    """
    counts = np.maximum(np.asarray(lengths) - n_frames + 1, 0)
    if counts.sum() == 0:
        raise ValueError(
            f"no stimulus has {n_frames} valid frames, the gradient map's window; use a "
            "smaller n_frames"
        )
    stimulus = np.repeat(np.arange(len(counts)), counts)
    start = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    if max_windows is not None and len(start) > max_windows:
        keep = np.linspace(0, len(start) - 1, max_windows).round().astype(int)
        stimulus, start = stimulus[keep], start[keep]
    return X[stimulus[:, None], start[:, None] + np.arange(n_frames)]


def gradient_maps(estimator, X=None, *, baseline=0.0, n_frames: int | None = None,
                  max_windows: int | None = 2000) -> np.ndarray:
    """Gradient of each neuron's predicted response with respect to its recent input.

    ``maps[n, f, k]`` is the derivative of neuron ``n``'s output at the last frame of an
    input window with respect to band ``f`` of the window's frame ``k`` frames earlier (lag
    0 = the last frame), the same layout as ``strfs_``. It applies to any model, linear or
    not (Rançon et al. 2025); for a linear model (no prefilter, identity output) it equals
    ``strfs_`` exactly, whatever the input. All neurons are computed in one batched
    backward pass (one neuron per block of batch rows).

    Parameters
    ----------
    estimator : fitted STRFRegressor, Pipeline ending in one, or search with ``best_estimator_``
        The model. Through a Pipeline the maps are with respect to the final estimator's
        input (the output of the earlier steps).
    X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs), default=None
        None: the gradient at a constant input equal to ``baseline``. Otherwise the average
        gradient over windows of these stimuli (each window fed to the model as a short
        stimulus of its own), a data-dependent map that reflects where the nonlinearities
        actually operate. Windows are ``n_frames`` long, plus the prefilter's taps minus
        one with a prefilter, so that the returned lags see the prefilter's full history
        and not the window's edge.
    baseline : float or array-like of shape (n_freqs,), default=0.0
        Level of the constant input when ``X`` is None, in X's units (e.g. the level of
        silence, or a typical level ``np.nanmean(X, axis=(0, 1))``). With a rectifying
        prefilter (AdapTrans) silence drives neither channel and the map is zero; use a
        typical sound level, e.g. ``np.nanmean(X, axis=(0, 1))`` (NaN-padding left out).
    n_frames : int, default=None
        Number of lags of the maps; by default the fitted model's number of lags (the
        ``n_lags`` it was fitted with). More lags show
        how far back a prefilter's influence reaches.
    max_windows : int or None, default=2000
        With ``X``: at most this many windows, evenly spaced, are averaged.

    Returns
    -------
    maps : ndarray of shape (n_neurons, n_freqs, n_frames)
        In the units of the prediction per unit of input.
    """
    est, transform = _final_estimator(estimator)
    module = _module(est)
    device = next(module.parameters()).device
    n_freqs, n_neurons = est.n_features_in_, est.n_neurons_
    if n_frames is None:
        n_frames = module.n_lags  # the fitted model's, not a later set_params's
    if isinstance(n_frames, bool) or not isinstance(n_frames, numbers.Integral) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer; got {n_frames!r}")
    n_frames = int(n_frames)
    if max_windows is not None and (isinstance(max_windows, bool) or not isinstance(max_windows, numbers.Integral)
                                    or max_windows < 1):
        raise ValueError(f"max_windows must be a positive integer or None; got {max_windows!r}")
    # A window's first frame stands for its whole past (a prefilter repeats it, like a
    # stimulus onset), so its gradient piles up the prefilter's history: extend the window
    # by the prefilter's taps and keep that edge out of the returned lags.
    context = n_frames + getattr(module.prefilter, "n_taps", 1) - 1
    if X is None:
        inputs = _baseline_input(baseline, n_neurons, context, n_freqs, module)
        grad = _last_frame_gradient(module, inputs[:, None], n_neurons)[:, 0]
        return _to_maps(grad)[..., :n_frames]
    data = _stimuli(est, transform, X)
    windows = module_input(_windows(np.nan_to_num(data.X), data.lengths, context, max_windows), module)
    chunk = max(1, _ROWS_PER_PASS // n_neurons)
    total = torch.zeros(n_neurons, context, n_freqs, dtype=torch.float64, device=device)
    for start in range(0, len(windows), chunk):
        block = torch.as_tensor(windows[start:start + chunk], device=device)
        grad = _last_frame_gradient(module, block.expand(n_neurons, *block.shape), n_neurons)
        total += grad.sum(dim=1).double()
    return _to_maps(total / len(windows))[..., :n_frames]


def linear_drive(estimator, X) -> np.ndarray:
    """Output of the linear stage (after any prefilter, before the output nonlinearity).

    For a linear model it equals ``predict``; for an LN model ``predict`` returns
    ``output_nonlinearity(estimator, linear_drive(estimator, X))``.

    Parameters
    ----------
    estimator : fitted STRFRegressor, Pipeline ending in one, or search with ``best_estimator_``
    X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
        Stimuli, NaN-padded at the end.

    Returns
    -------
    z : ndarray
        In ``predict``'s layout, e.g. (n_stimuli, n_times, n_neurons); NaN on padding.
    """
    est, transform = _final_estimator(estimator)
    module = _module(est)
    data = _stimuli(est, transform, X)
    device = next(module.parameters()).device
    with torch.no_grad():
        z = module.linear(torch.as_tensor(module_input(data.X, module), device=device))
    z = z.cpu().numpy().astype(np.float64) + module.y_offset.cpu().numpy()
    z[~data.frame_mask] = np.nan
    return to_user_layout(z, data.x_ndim, est.y_layout_)


def output_nonlinearity(estimator, z) -> np.ndarray:
    """Apply each neuron's fitted output nonlinearity to linear-stage values ``z``.

    Parameters
    ----------
    estimator : fitted STRFRegressor, Pipeline ending in one, or search with ``best_estimator_``
    z : array-like of shape (..., n_neurons)
        Values of the linear stage, e.g. a grid ``np.linspace(lo, hi, 200)[:, None]``
        repeated over neurons, or the output of :func:`linear_drive`.

    Returns
    -------
    rate : ndarray of the same shape as ``z``
        ``z`` itself for a linear model.
    """
    est, _ = _final_estimator(estimator)
    module = _module(est)
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 0 or z.shape[-1] != est.n_neurons_:
        raise ValueError(
            f"z must have the neurons last, shape (..., {est.n_neurons_}); got shape {z.shape}"
        )
    if module.nonlinearity is None:
        return z.copy()
    device = next(module.parameters()).device
    with torch.no_grad():
        rate = module.nonlinearity(torch.as_tensor(z, dtype=torch.float32, device=device))
    return rate.cpu().numpy().astype(np.float64)


# ----------------------------------------------------------------------------- jackknife
_CORRECTIONS = ("fdr", "bonferroni", None)


def jackknife_strfs(estimator, X, y, *, level: float = 0.05, correction: str | None = "fdr",
                    min_contribution: float = 0.01, n_jobs: int | None = None,
                    alpha="deprecated") -> Bunch:
    """Leave-one-stimulus-out jackknife of the STRFs: error bars and significant pixels.

    The model is refitted once per stimulus of ``X`` with that stimulus left out. For a
    closed-form ridge fit (``solver_ == "ridge"``) the refits are exact and cheap: each
    fold's sufficient statistics are the total minus one stimulus's, solved with the
    fitted per-neuron penalties ``alpha_``, the fit's standardisation and its history level
    before each stimulus (a refit from scratch would take the left-in stimuli's mean),
    vectorised over neurons (one eigendecomposition per fold). Any other model (``"als"``, ``"gradient"``,
    a pipeline) is refitted from scratch by :func:`sklearn.base.clone` and ``fit`` on each
    leave-one-out set, through joblib; those refits repeat the whole procedure, penalty
    choice and early stopping included.

    With ``S`` stimuli and leave-one-out estimates ``theta_i``, the jackknife standard
    error is ``sqrt((S - 1) / S * sum_i (theta_i - theta_bar)**2)`` (Efron & Stein 1981),
    ``z = theta_bar / se`` and the two-sided p-value of each pixel is read from Student's
    t distribution with ``S - 1`` degrees of freedom.

    **Only pixels that matter to the prediction are significant.** A pixel's contribution is
    its weight times its band's standard deviation over the training frames (the estimator's
    ``contributions_``): how far a typical fluctuation of that band, at that lag, moves the
    prediction. On a band that hardly varies (a log spectrogram's floor) a weight can be
    large and consistent across the leave-one-out fits, hence "significant", while it moves
    the prediction by a millionth of what the cell's real pixels do. A pixel whose
    contribution (of the jackknife mean) is below ``min_contribution`` times the largest
    absolute contribution of its neuron's STRF is therefore never significant. The
    correction still counts every pixel (the rule only removes pixels from the mask, it
    never lets more in). The z-scores and p-values are those of the weights (scaling a band
    by a constant changes neither).

    Parameters
    ----------
    estimator : fitted STRFRegressor, Pipeline ending in one, or search with ``best_estimator_``
        The model. Refits (not closed-form ridge) clone the whole pipeline.
    X : array-like of shape (n_stimuli, n_times, n_freqs)
        Stimuli to resample, usually the ones the model was fitted on; NaN-padded at the
        end. At least 3 stimuli; the more, the better the error bars (10 or more).
    y : array-like
        Responses in the layout used for ``fit``, e.g. (n_stimuli, n_times, n_neurons,
        n_repeats).
    level : float, default=0.05
        Significance level of the mask, in (0, 1).
    correction : {"fdr", "bonferroni"} or None, default="fdr"
        Control of false positives over the pixels of each STRF: ``"fdr"`` keeps the
        expected share of false discoveries among each neuron's significant pixels below
        ``level`` (Benjamini & Hochberg 1995); ``"bonferroni"`` keeps the probability of
        any false pixel in a neuron's STRF below ``level``; None tests each pixel at
        ``level`` (about ``level`` of the truly-zero pixels come out significant).
    min_contribution : float in [0, 1), default=0.01
        Pixels whose contribution is below this share of the largest contribution of their
        neuron's STRF are never significant (see above); they are marked in ``negligible``.
        0 tests every pixel on its p-value alone.
    n_jobs : int, default=None
        Parallel refits (joblib) for models without the exact closed-form jackknife.
    alpha : float
        Deprecated name of ``level`` (``alpha`` is the penalty everywhere else in skstrf);
        still accepted, with a FutureWarning, and removed in 0.2.

        .. deprecated:: 0.1

    Returns
    -------
    result : sklearn.utils.Bunch
        With the fields:

        strfs : ndarray of the shape of ``strfs_``, e.g. (n_neurons, n_freqs, n_lags)
            Mean of the leave-one-out STRFs, in the data's units.
        se : ndarray of the shape of ``strfs``
            Jackknife standard error of each pixel.
        z : ndarray of the shape of ``strfs``
            ``strfs / se``; NaN where ``se`` is 0.
        pvalue : ndarray of the shape of ``strfs``
            Two-sided p-value of each pixel (1 where ``se`` is 0).
        significant : ndarray of bool of the shape of ``strfs``
            The pixels significant at ``level`` after ``correction`` whose contribution is
            not negligible.
        contributions : ndarray of the shape of ``strfs``
            ``strfs`` times each band's standard deviation over the training frames (the
            scale of the estimator's ``contributions_``), in the units of the prediction.
        negligible : ndarray of bool of the shape of ``strfs``
            The pixels whose contribution is below ``min_contribution`` of their STRF's
            largest (never significant).
        estimates : ndarray of shape (n_stimuli,) + the shape of ``strfs``
            The leave-one-out STRFs; ``estimates[i]`` leaves stimulus ``i`` out.
        method : str
            ``"closed_form"`` or ``"refit"``.

    See Also
    --------
    skstrf.plotting.plot_strfs : Draws ``significant`` with ``significance=``.

    Examples
    --------
    >>> from skstrf import STRFRegressor
    >>> from skstrf.datasets import make_strf_dataset
    >>> from skstrf.inspection import jackknife_strfs
    >>> data = make_strf_dataset(n_stimuli=8, n_times=200, n_freqs=8, n_neurons=2,
    ...                          n_repeats=4, n_lags=5, random_state=0)
    >>> est = STRFRegressor(n_lags=5).fit(data.X, data.y)
    >>> jack = jackknife_strfs(est, data.X, data.y)
    >>> jack.se.shape
    (2, 8, 5)
    """
    level = _renamed_alpha(alpha, level)
    _check_level(level, correction)
    _check_min_contribution(min_contribution)
    est, transform = _final_estimator(estimator)
    scale = _band_scale(est)
    data = check_responses(y, _stimuli(est, transform, X))
    n_stimuli = data.n_stimuli
    if n_stimuli < 3:
        raise ValueError(
            f"the jackknife leaves one stimulus out at a time and needs at least 3 stimuli; "
            f"got {n_stimuli}. Split a continuous recording into blocks of stimuli "
            "(shape (n_stimuli, n_times, n_freqs)) to use it."
        )
    solver = SOLVERS.get(getattr(est, "solver_", None))
    if solver is not None and solver.refit is not None and _module(est).is_linear:
        estimates = _closed_form_jackknife(est, data, solver.refit)
        method = "closed_form"
    else:
        estimates = _refit_jackknife(estimator, X, y, n_stimuli, n_jobs)
        method = "refit"
    return _jackknife_summary(estimates, level, correction, method, scale, min_contribution)


def _check_min_contribution(min_contribution) -> None:
    if (isinstance(min_contribution, bool) or not isinstance(min_contribution, numbers.Real)
            or not 0 <= min_contribution < 1):
        raise ValueError(
            "min_contribution must be a number in [0, 1), the share of a STRF's largest "
            f"contribution below which a pixel is never significant (0 tests every pixel); "
            f"got {min_contribution!r}"
        )


def _band_scale(est) -> np.ndarray:
    """Each input (channel-)band's standard deviation over the fit's training frames.

    It is the factor between ``contributions_`` and ``strfs_``, read back from the two
    (per band, over neurons and lags, where a weight is not zero: a band whose weights are
    all zero contributes nothing whatever its scale).

    Returns
    -------
    scale : ndarray of shape (n_freqs, 1) or (n_channels, n_freqs, 1)
        Broadcasts against one neuron's STRF.
    """
    contributions = getattr(est, "contributions_", None)
    if contributions is None:
        raise ValueError(
            f"this {type(est).__name__} has no contributions_ (it was fitted by an older "
            "version of skstrf); refit it to tell which pixels matter to the prediction"
        )
    strfs = est.strfs_
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(strfs != 0, contributions / strfs, np.nan)
    ratio = np.moveaxis(ratio, 0, -2).reshape(*strfs.shape[1:-1], -1)
    known = ~np.isnan(ratio).all(axis=-1)
    scale = np.zeros(strfs.shape[1:-1])
    scale[known] = np.nanmedian(ratio[known], axis=-1)
    return np.abs(scale)[..., None]


def _renamed_alpha(alpha, level: float) -> float:
    """``level``, or the deprecated ``alpha`` given in its place (with a FutureWarning)."""
    if isinstance(alpha, str) and alpha == "deprecated":
        return level
    if not (isinstance(level, numbers.Real) and level == 0.05):
        raise ValueError(f"give the significance level as level only; got level={level!r} and "
                         f"the deprecated alpha={alpha!r}")
    warnings.warn("'alpha' was renamed to 'level' in version 0.1 and will be removed in 0.2 (alpha is "
                  f"the penalty everywhere else in skstrf); use level={alpha!r}.",
                  FutureWarning, stacklevel=3)
    return alpha


def _check_level(level: float, correction: str | None) -> None:
    """Raise a ValueError for a level outside (0, 1) or an unknown correction."""
    if (isinstance(level, bool) or not isinstance(level, numbers.Real)
            or not 0 < level < 1):
        raise ValueError(f"level must be a number in (0, 1); got {level!r}")
    if correction not in _CORRECTIONS:
        raise ValueError(f"correction must be one of {list(_CORRECTIONS)}; got {correction!r}")


def _closed_form_jackknife(est, data, refit) -> np.ndarray:
    """Leave-one-stimulus-out STRFs from per-stimulus statistics, by the solver's exact
    ``refit`` (:class:`skstrf._solvers.Solver`) with the fit's penalty.

    Returns
    -------
    estimates : ndarray of shape (n_stimuli,) + ``est.strfs_.shape``
    """
    module = _module(est)
    device = next(module.parameters()).device
    stats = module_statistics(module, data, str(device))
    n_neurons, n_channels, n_freqs, n_lags = module.kernel.shape
    everything = torch.arange(data.n_stimuli, device=stats.gram.device)
    folds = []
    for left_out in range(data.n_stimuli):
        # A fold is a sum of per-stimulus statistics: the total without one stimulus.
        folds.append(refit(stats, everything[everything != left_out], est.net_.penalty).T)  # (N, D)
    weight = torch.stack(folds).reshape(data.n_stimuli, n_neurons, n_channels, n_freqs, n_lags)
    scale = (module.y_scale.double()[:, None, None, None]
             / module.x_scale.double().reshape(n_channels, n_freqs)[None, :, :, None])
    strfs = (weight * scale).cpu().numpy()
    return strfs.reshape((data.n_stimuli,) + est.strfs_.shape)


def _refit_one(estimator, X, y, keep: np.ndarray) -> np.ndarray:
    """STRFs of a clone of ``estimator`` fitted on the stimuli ``keep``."""
    fitted = clone(estimator).fit(X[keep], y[keep])
    return _final_estimator(fitted)[0].strfs_


def _refit_jackknife(estimator, X, y, n_stimuli: int, n_jobs: int | None) -> np.ndarray:
    """Leave-one-stimulus-out STRFs by refitting clones (in parallel through joblib)."""
    estimator = getattr(estimator, "best_estimator_", estimator)
    X, y = np.asarray(X), np.asarray(y)
    everything = np.arange(n_stimuli)
    strfs = Parallel(n_jobs=n_jobs)(
        delayed(_refit_one)(estimator, X, y, everything[everything != s]) for s in everything)
    return np.stack(strfs)


def _jackknife_summary(estimates: np.ndarray, level: float, correction: str | None,
                       method: str, scale: np.ndarray, min_contribution: float) -> Bunch:
    """Mean, standard error, z, p-values and significance mask from leave-one-out estimates.

    ``scale`` (each band's standard deviation, broadcasting against one STRF) turns weights
    into contributions; pixels below ``min_contribution`` of their neuron's largest
    contribution are left out of the mask.
    """
    from scipy import stats

    n = estimates.shape[0]
    mean = estimates.mean(axis=0)
    se = np.sqrt((n - 1) / n * ((estimates - mean) ** 2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, mean / se, np.nan)
    pvalue = np.where(np.isnan(z), 1.0, 2.0 * stats.t.sf(np.abs(z), df=n - 1))
    contributions = mean * scale
    size = np.abs(contributions).reshape(len(contributions), -1)
    largest = size.max(axis=1).reshape((-1,) + (1,) * (contributions.ndim - 1))
    negligible = np.abs(contributions) < min_contribution * largest
    significant = significance_mask(pvalue, level=level, correction=correction) & ~negligible
    return Bunch(strfs=mean, se=se, z=z, pvalue=pvalue, significant=significant,
                 contributions=contributions, negligible=negligible, estimates=estimates,
                 method=method)


def significance_mask(pvalue, *, level: float = 0.05, correction: str | None = "fdr",
                      alpha="deprecated") -> np.ndarray:
    """Significant pixels of each STRF from per-pixel p-values, corrected per neuron.

    Parameters
    ----------
    pvalue : array-like of shape (n_neurons, ...)
        P-values of the pixels of each neuron's STRF, e.g. (n_neurons, n_freqs, n_lags).
    level : float, default=0.05
        Significance level, in (0, 1).
    correction : {"fdr", "bonferroni"} or None, default="fdr"
        ``"fdr"``: Benjamini-Hochberg over each neuron's pixels (the expected share of
        false pixels among the significant ones is at most ``level``). ``"bonferroni"``:
        ``p < level / n_pixels`` (the chance of any false pixel in a neuron is at most
        ``level``). None: ``p < level`` pixel by pixel.
    alpha : float
        Deprecated name of ``level``; still accepted, with a FutureWarning, and removed in
        0.2.

        .. deprecated:: 0.1

    Returns
    -------
    significant : ndarray of bool of the shape of ``pvalue``
    """
    level = _renamed_alpha(alpha, level)
    _check_level(level, correction)
    p = np.asarray(pvalue, dtype=np.float64)
    if p.ndim < 2:
        raise ValueError(f"pvalue must have shape (n_neurons, ...) with the pixels after the "
                         f"neurons; got shape {p.shape}")
    flat = p.reshape(p.shape[0], -1)
    n_pixels = flat.shape[1]
    if correction is None:
        return p < level
    if correction == "bonferroni":
        return p < level / n_pixels
    # Benjamini-Hochberg per neuron: reject the k smallest where p_(k) <= k level / m.
    order = np.sort(flat, axis=1)
    below = order <= level * np.arange(1, n_pixels + 1) / n_pixels
    count = np.where(below.any(axis=1), n_pixels - np.argmax(below[:, ::-1], axis=1), 0)
    cutoff = np.where(count > 0, order[np.arange(len(order)), np.maximum(count - 1, 0)], -np.inf)
    return (flat <= cutoff[:, None]).reshape(p.shape)
