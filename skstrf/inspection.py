"""Inspection of STRF estimators: gradient maps, the linear stage, the jackknife, variance partitioning."""

from __future__ import annotations

import itertools
import numbers
import warnings

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.model_selection import KFold, check_cv
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from ._model import module_input, module_statistics
from ._layout import to_user_layout
from ._penalty import check_feature_spaces
from ._solvers import SOLVERS
from ._validation import check_responses, check_stimuli
from .metrics import ScoreSums, UnreliableNeuronWarning

__all__ = ["gradient_maps", "linear_drive", "output_nonlinearity", "jackknife_strfs",
           "significance_mask", "partition_variance"]

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
    weight = torch.stack(folds).reshape(data.n_stimuli, n_neurons, *module.kernel.coefficient_shape)
    frame = module.kernel.lag_frame  # over a lag basis, the statistics' columns are its coefficients
    if frame is not None:
        weight = weight @ frame.to(weight).T
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


# --------------------------------------------------------------------- variance partitioning
#: The most feature spaces :func:`partition_variance` takes: 2**k - 1 subsets, each refitted
#: once per outer fold (15 subsets for 4 spaces), and 2**k - 1 parts of the explained variance
#: to read. Beyond, group spaces (a space may hold several) or compare definitions with
#: GridSearchCV.
MAX_PARTITION_SPACES = 4
_UNRELIABLE_OPTIONS = ("exclude", "warn", "ignore")


def partition_variance(estimator, X, y, *, cv=5, groups=None, n_jobs: int | None = None,
                       unreliable: str = "warn") -> Bunch:
    """Held-out variance explained by every subset of the feature spaces, and each space's
    unique and shared part, as a share of the explainable (noise-free) variance.

    The estimator's ``feature_spaces`` name ``k`` groups of bands of X. For every non-empty
    subset of them (``2**k - 1``), a clone of the estimator is refitted on that subset's
    bands only, on the training stimuli of each outer fold, and predicts the held-out
    stimuli: its ``feature_spaces`` restricted to the subset (a single space: no spaces,
    one shared penalty), every other option kept, its penalties chosen by its own inner
    cross-validation as in any fit. ``(2**k - 1) * n_folds`` fits in all, each as long as a
    normal fit (3 spaces and 5 folds: 35 fits).

    **The score** of a subset's model, per neuron, on the out-of-fold predictions ``q``
    pooled over all stimuli, and the PSTH ``p``: the explained variance
    ``EV = var(p) - mean((p - q)**2)`` (an R², additive where squared correlations are not),
    as a share of the signal power ``SP`` (Sahani & Linden 2003,
    :func:`skstrf.metrics.signal_power`) of the same frames: ``EV / SP``. The PSTH's noise
    adds the same amount to ``var(p)`` and to the held-out mean squared error, so ``EV``
    estimates the variance of the noise-free response the model explains and ``EV / SP``
    its share (1: all of it). Every subset is divided by the same ``SP``, so differences
    between subsets are differences of shares. With a single repeat there is no ``SP``: the
    shares are of ``var(p)`` (noise included), with an
    :class:`~sklearn.exceptions.UndefinedMetricWarning`, as :func:`skstrf.metrics.cc_norm`
    falls back to ``cc``. The shares are unbiased estimates, not clipped: a model worse
    than the neuron's mean scores below 0, a part can be slightly negative.

    **The parts** (Lescroart et al. 2015; de Heer et al. 2017, J Neurosci 37:6539): the
    unique part of space ``i`` is ``R²(all) - R²(all but i)``; the shared part is
    ``R²(all)`` minus the sum of the unique parts (for two spaces, their intersection
    ``R²(A) + R²(B) - R²(A + B)``). ``regions`` gives the full set-theoretic decomposition
    by inclusion-exclusion: the part explained by exactly the spaces of each subset and by
    no other (singletons: the unique parts; the regions add up to ``R²(all)``).

    Parameters
    ----------
    estimator : STRFRegressor or Pipeline ending in one
        With ``feature_spaces`` naming 2 to :data:`MAX_PARTITION_SPACES` spaces; fitted or
        not (only its parameters are used; it is not changed). A pipeline's earlier steps
        (e.g. :class:`~skstrf.preprocessing.FeatureSpaces`) are cloned and fitted on each
        outer fold's training stimuli; the spaces are those of the final estimator's input.
    X : array-like of shape (n_stimuli, n_times, n_freqs)
        Stimuli, NaN-padded at the end (for a pipeline, what its first step takes, with the
        stimuli on axis 0). One continuous recording: cut it into blocks of the stimulus
        layout first.
    y : array-like of shape (n_stimuli, n_times, n_neurons, n_repeats)
        Responses in any layout of the data contract with a stimulus axis.
    cv : int, cross-validation splitter or iterable, default=5
        The outer folds over whole stimuli: ``K`` contiguous folds (``KFold(K)``), a
        scikit-learn splitter (``GroupKFold``, ``LeaveOneGroupOut``, ...) or a list of
        ``(train, test)`` stimulus indices. The test sets must be a partition of the
        stimuli (each stimulus held out exactly once), since the scores pool the
        out-of-fold predictions of all stimuli.
    groups : array-like of shape (n_stimuli,), default=None
        The group of each stimulus, passed to ``cv``'s splitter (then a splitter, not an
        int), and to the estimator's own ``fit`` when its ``cv`` is a splitter (its inner
        folds then keep groups together too).
    n_jobs : int, default=None
        Refits run in parallel (joblib), over subsets and folds.
    unreliable : {"exclude", "warn", "ignore"}, default="warn"
        As in :func:`skstrf.metrics.cc_norm`: a neuron whose signal power is not
        distinguishable from zero (:func:`skstrf.metrics.signal_power_reliability`) keeps
        its shares with an :class:`~skstrf.metrics.UnreliableNeuronWarning` ("warn"), gets
        NaN everywhere with the warning ("exclude"), or keeps them silently ("ignore"); its
        shares are of a denominator that may be noise. A neuron whose signal power is not
        positive gets NaN in any case.

    Returns
    -------
    result : sklearn.utils.Bunch
        With the fields:

        space_names : list of str, length n_spaces
            A dict's keys in ``feature_spaces``, else a pipeline step's ``space_names_``
            (``FeatureSpaces``), else ``"space 0"``, ``"space 1"``, ...
        subsets : list of tuple of int, length n_subsets = 2**n_spaces - 1
            The spaces of each subset (indices into ``space_names``), by size then in order;
            the last is every space.
        subset_names : list of str, length n_subsets
            E.g. ``"spectrogram + onsets"``.
        scores : ndarray of shape (n_subsets, n_neurons)
            Each subset's held-out share of the explainable variance.
        unique : ndarray of shape (n_spaces, n_neurons)
            Each space's unique part.
        shared : ndarray of shape (n_neurons,)
            ``total`` minus the sum of the unique parts.
        total : ndarray of shape (n_neurons,)
            ``scores[-1]``: every space.
        regions : ndarray of shape (n_subsets, n_neurons)
            The part explained by exactly the spaces of ``subsets[j]``.
        signal_power : ndarray of shape (n_neurons,)
            The denominator (the PSTH's variance without repeats), in y's units squared;
            where it is not positive, as estimated (the shares are NaN there).
        normalization : {"signal_power", "psth_variance"}
            What the shares are of: the explainable variance, or (without repeats) the
            PSTH's variance.
        reliable : ndarray of bool of shape (n_neurons,) or None
            The reliability flag of each neuron's signal power (None without repeats).
        n_folds, n_fits : int
            Outer folds, and refits made.

    See Also
    --------
    skstrf.plotting.plot_variance_partition : Draws the result.

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf import STRFRegressor
    >>> from skstrf.inspection import partition_variance
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((10, 150, 4))
    >>> drive = X[..., 0] + 0.5 * X[..., 2]
    >>> y = drive[..., None, None] + rng.standard_normal((10, 150, 1, 4))
    >>> est = STRFRegressor(n_lags=2, feature_spaces=[2, 2])
    >>> part = partition_variance(est, X, y)
    >>> part.subset_names
    ['space 0', 'space 1', 'space 0 + space 1']
    >>> part.unique.shape, part.total.shape
    ((2, 1), (1,))
    """
    final, head, spaces = _partition_estimator(estimator)
    if not isinstance(unreliable, str) or unreliable not in _UNRELIABLE_OPTIONS:
        raise ValueError(f"unreliable must be one of {list(_UNRELIABLE_OPTIONS)}; got {unreliable!r}")
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 2 or (head is None and X.ndim != 3):
        raise ValueError(
            f"partition_variance refits on whole stimuli and needs X of shape (n_stimuli, n_times, "
            f"n_freqs); got shape {X.shape}. Cut one continuous recording into blocks of the "
            "stimulus layout (n_blocks, n_times, n_freqs), NaN-padding the last one.")
    if y.ndim == 0 or len(y) != len(X):
        raise ValueError(f"y has {len(y) if y.ndim else 0} stimuli on axis 0 but X has {len(X)}; "
                         "give one response per stimulus of X")
    if head is None:  # the data contract on the whole data, with its shapes in the messages
        check_responses(y, check_stimuli(X, owner="partition_variance"))
    folds = _outer_folds(cv, X, groups)
    inner_groups = groups is not None and hasattr(final.cv, "split")
    # The cheap part first: every fold's earlier pipeline steps, the spaces and the held-out
    # responses are checked before the first refit.
    prepared = [_prepare_fold(head, X, y, train, test) for train, test in folds]
    n_freqs = prepared[0][0].shape[-1]
    space_of_band = check_feature_spaces(spaces, n_freqs)
    if any(z.shape[-1] != n_freqs for fold in prepared for z in fold[:2]):
        raise ValueError("the pipeline's earlier steps give different numbers of bands on different folds")
    n_spaces = int(space_of_band.max()) + 1
    names = _space_names(spaces, head, prepared, n_spaces)
    subsets = [s for size in range(1, n_spaces + 1) for s in itertools.combinations(range(n_spaces), size)]
    refits = [_subset_options(final, space_of_band, subset) for subset in subsets]
    tasks = [(f, j) for f in range(len(folds)) for j in range(len(subsets))]
    preds = Parallel(n_jobs=n_jobs)(
        delayed(_subset_fit_predict)(final, refits[j][1], prepared[f][0], y[folds[f][0]], prepared[f][1],
                                     refits[j][0], groups[folds[f][0]] if inner_groups else None)
        for f, j in tasks)
    lead_in = final.lead_in
    responses = [fold[2].with_lead_in(lead_in) for fold in prepared]
    y_held = _stack_stimuli([data.scored(data.y) for data in responses])
    pred = {}
    for (f, j), p in zip(tasks, preds):
        pred.setdefault(j, []).append(p)
    scores, power, reliable, normalization = _explained_shares(
        y_held, [_stack_stimuli(pred[j]) for j in range(len(subsets))], unreliable)
    full = len(subsets) - 1
    unique = np.stack([scores[full] - scores[subsets.index(tuple(i for i in range(n_spaces) if i != s))]
                       for s in range(n_spaces)])
    return Bunch(space_names=names, subsets=subsets,
                 subset_names=[" + ".join(names[i] for i in s) for s in subsets],
                 scores=scores, unique=unique, shared=scores[full] - unique.sum(axis=0), total=scores[full].copy(),
                 regions=_regions(scores, subsets, n_spaces), signal_power=power,
                 normalization=normalization, reliable=reliable, n_folds=len(folds), n_fits=len(tasks))


def _partition_estimator(estimator):
    """The STRF estimator whose spaces are partitioned, the pipeline steps before it (or
    None), and its ``feature_spaces``; every check that needs no data."""
    if hasattr(estimator, "best_estimator_") or hasattr(estimator, "param_grid") \
            or hasattr(estimator, "param_distributions"):
        raise TypeError(
            f"partition_variance refits the estimator on every subset of its feature spaces; a "
            f"{type(estimator).__name__} would rerun its search for each. Pass the model it chose, "
            "search.best_estimator_ (or set its parameters on a STRFRegressor).")
    head = None
    final = estimator
    if hasattr(estimator, "steps"):
        head = estimator[:-1] if len(estimator.steps) > 1 else None
        final = estimator.steps[-1][1]
    params = final.get_params(deep=False) if hasattr(final, "get_params") else {}
    if "feature_spaces" not in params or not hasattr(final, "predict_stimuli"):
        raise TypeError(
            "partition_variance needs a STRFRegressor, or a Pipeline ending in one, with "
            f"feature_spaces; got {type(final).__name__}.")
    spaces = params["feature_spaces"]
    if spaces is None:
        n_spaces = 0
    elif isinstance(spaces, (str, bytes)) or not hasattr(spaces, "__len__"):
        n_spaces = -1  # not spaces at all: named below, as none
    else:
        n_spaces = len(spaces)
    if n_spaces < 2:
        raise ValueError(
            f"partition_variance splits the variance between the estimator's feature spaces, but its "
            f"feature_spaces={spaces!r} names {max(n_spaces, 0)}; give at least 2 (e.g. "
            "feature_spaces=[34, 34, 1] for a spectrogram, its onsets and its envelope).")
    if n_spaces > MAX_PARTITION_SPACES:
        raise ValueError(
            f"partition_variance takes at most {MAX_PARTITION_SPACES} feature spaces ("
            f"{2 ** MAX_PARTITION_SPACES - 1} subsets, each refitted on every fold); got {n_spaces} "
            f"({2 ** n_spaces - 1} subsets). Group spaces together (a space may hold several), or "
            "compare definitions of the spaces with GridSearchCV.")
    if params.get("prefilter") is not None:
        raise ValueError(
            f"partition_variance does not take prefilter={params['prefilter']!r}: the prefilter "
            "sets each band's adaptation from its position among all of X's bands (freq_range), "
            "which a subset of the bands would shift. Partition a model without a prefilter.")
    return final, head, spaces


def _outer_folds(cv, X, groups) -> list[tuple[np.ndarray, np.ndarray]]:
    """The outer folds as stimulus indices, checked to hold out each stimulus exactly once."""
    n_stimuli = len(X)
    if groups is not None:
        groups = np.asarray(groups)
        if groups.ndim != 1 or groups.size != n_stimuli:
            raise ValueError(f"groups must hold one label per stimulus, shape ({n_stimuli},); "
                             f"got shape {groups.shape}")
        if isinstance(cv, numbers.Integral):
            raise ValueError(f"groups are passed to cv's splitter, but cv={cv!r} cuts contiguous folds "
                             "of stimuli; pass a group splitter, e.g. cv=GroupKFold(5), or no groups.")
    if isinstance(cv, bool) or (isinstance(cv, numbers.Integral) and not 2 <= cv <= n_stimuli):
        raise ValueError(f"cv must be a number of folds from 2 to the {n_stimuli} stimuli, a splitter "
                         f"or a list of (train, test) folds; got {cv!r}")
    if cv is None or isinstance(cv, str):
        raise ValueError(f"cv must be a number of folds, a splitter or a list of (train, test) "
                         f"folds; got {cv!r}")
    splitter = KFold(int(cv)) if isinstance(cv, numbers.Integral) else check_cv(cv)
    folds = [(np.asarray(train), np.asarray(test)) for train, test in splitter.split(X, None, groups)]
    held = np.concatenate([test for _, test in folds]) if folds else np.zeros(0, dtype=int)
    if held.dtype.kind not in "iu" or any(t.dtype.kind not in "iu" for t, _ in folds):
        raise ValueError("cv must give integer stimulus indices")
    counts = np.bincount(held, minlength=n_stimuli) if held.size and held.min() >= 0 else None
    if counts is None or counts.size != n_stimuli or (counts != 1).any():
        raise ValueError(
            f"cv must hold out every stimulus exactly once (its test sets a partition of the "
            f"{n_stimuli} stimuli, as KFold, GroupKFold or LeaveOneGroupOut give): the scores pool "
            "the out-of-fold predictions of all stimuli. ShuffleSplit and repeated splitters do not.")
    for k, (train, test) in enumerate(folds):
        if train.size == 0 or np.isin(train, test).any():
            problem = "no training stimulus" if train.size == 0 else "stimuli in both its training and its test set"
            raise ValueError(f"fold {k} of cv has {problem}")
    return folds


def _prepare_fold(head, X, y, train, test):
    """One fold's stimuli as the final estimator sees them (training, held-out) and the
    held-out responses, validated."""
    if head is None:
        z_train, z_test = X[train], X[test]
    else:
        fitted = clone(head)
        z_train = np.asarray(fitted.fit_transform(X[train], y[train]))
        z_test = np.asarray(fitted.transform(X[test]))
        if z_train.ndim != 3 or z_test.ndim != 3:
            raise ValueError(
                f"the pipeline's earlier steps give arrays of shape {z_test.shape}; partition_variance "
                "needs stimuli, (n_stimuli, n_times, n_freqs), at the final estimator's input")
        head = fitted
    held = check_responses(y[test], check_stimuli(z_test, owner="partition_variance"))
    return z_train, z_test, held, head


def _space_names(spaces, head, prepared, n_spaces: int) -> list[str]:
    if isinstance(spaces, dict):
        return [str(name) for name in spaces]
    if head is not None:
        fitted = prepared[0][3]
        for step in reversed([s for _, s in fitted.steps]):
            names = getattr(step, "space_names_", None)
            if names is not None and list(getattr(step, "feature_spaces_", [])) == list(spaces):
                return [str(name) for name in names]
    return [f"space {i}" for i in range(n_spaces)]


def _subset_options(final, space_of_band: np.ndarray, subset: tuple[int, ...]) -> tuple[np.ndarray, dict]:
    """The bands of a subset of the spaces (in X's order) and the estimator parameters that
    restrict it to them (everything else is kept)."""
    bands = np.flatnonzero(np.isin(space_of_band, subset))
    options: dict = {}
    if len(subset) == 1:
        options.update(feature_spaces=None, space_penalties=None)
    else:
        # index lists into the subset's own bands, in X's order: the full subset is the user's model
        options["feature_spaces"] = [np.flatnonzero(space_of_band[bands] == s).tolist() for s in subset]
        grid = final.space_penalties
        if grid is not None:
            grid = np.asarray(grid, dtype=np.float64)
            if grid.ndim == 2 and grid.shape[1] == space_of_band.max() + 1:
                rows = grid[:, list(subset)]
                rows = rows / rows[:, :1]
                _, first = np.unique(np.round(np.log(rows), 12), axis=0, return_index=True)
                options["space_penalties"] = rows[np.sort(first)]
    history = final.history
    if not isinstance(history, (str, numbers.Real)) and np.ndim(history) == 1 \
            and np.size(history) == space_of_band.size:
        options["history"] = np.asarray(history)[bands]  # a level per band: the subset's
    return bands, options


def _subset_fit_predict(final, options: dict, z_train, y_train, z_test, bands, groups):
    """One refit of a clone of ``final`` on some bands, and its held-out predictions
    (n_test, n_times, n_neurons), NaN where nothing is scored."""
    est = clone(final).set_params(**options)
    est.fit(z_train[..., bands], y_train, **({} if groups is None else {"groups": groups}))
    return est.predict_stimuli(est.check_stimuli(z_test[..., bands]))


def _stack_stimuli(parts: list[np.ndarray]) -> np.ndarray:
    """Arrays of stimuli (n_i, n_times_i, ...) stacked along the stimuli, NaN-padded in time."""
    n_times = max(p.shape[1] for p in parts)
    out = []
    for p in parts:
        p = np.asarray(p, dtype=np.float64)
        if p.shape[1] < n_times:
            pad = np.full((p.shape[0], n_times - p.shape[1]) + p.shape[2:], np.nan)
            p = np.concatenate([p, pad], axis=1)
        out.append(p)
    return np.concatenate(out)


def _explained_shares(y_held: np.ndarray, preds: list[np.ndarray], unreliable: str):
    """Each prediction's explained variance as a share of the signal power (or of the PSTH's
    variance without repeats), per neuron, from the pooled sums of :class:`ScoreSums`.

    Returns
    -------
    scores : ndarray of shape (n_predictions, n_neurons)
    power : ndarray of shape (n_neurons,)
        The denominator in y's units squared (as estimated, also where not positive).
    reliable : ndarray of bool of shape (n_neurons,) or None
    normalization : str
    """
    responses = ScoreSums.of(y_held)
    ep = np.asarray(responses.exponent_p)
    n = responses.count
    with np.errstate(divide="ignore", invalid="ignore"):
        var_p = responses.m2_p / n  # in units of 2**ep
    has_noise = responses.max_repeats >= 2
    reliable = None
    if has_noise:
        signal = np.ldexp(responses.powers()[0], -2 * ep)
        reliable = responses.reliability().reliable
        denominator = np.where(signal > 0, signal, np.nan)
        normalization = "signal_power"
        power = responses.powers()[0]
    else:
        warnings.warn(
            "partition_variance divides each explained variance by the signal power, which needs at "
            "least two repeats of a stimulus, but y has a single repeat: the shares are of the "
            "PSTH's variance, noise included (an upper bound no model reaches)",
            UndefinedMetricWarning, stacklevel=3)
        denominator = np.where(var_p > 0, var_p, np.nan)
        normalization = "psth_variance"
        power = np.ldexp(var_p, 2 * ep)
    scores = []
    for q in preds:
        sums = ScoreSums.of(y_held, q)
        d = np.asarray(sums.exponent_q) - ep  # predictions' units relative to the responses'
        with np.errstate(divide="ignore", invalid="ignore"):
            # var(p) - mean((p - q)^2) = (2 c_qp - m2_q) / n - (mean_p - mean_q)^2
            ev = (2 * np.ldexp(sums.c_qp, d) - np.ldexp(sums.m2_q, 2 * d)) / n \
                - (sums.mean_p - np.ldexp(sums.mean_q, d)) ** 2
        scores.append(ev / denominator)
    scores = np.stack(scores)
    undefined = np.isnan(denominator) & (n > 0)
    if undefined.any():
        warnings.warn(
            f"partition_variance: {int(undefined.sum())} of {undefined.size} neurons have no positive "
            f"{'signal power' if has_noise else 'PSTH variance'}; their shares are NaN",
            UndefinedMetricWarning, stacklevel=3)
    if reliable is not None and unreliable != "ignore":
        flagged = ~reliable & ~undefined
        if flagged.any():
            what = ("their shares are NaN; pass unreliable='warn' to keep them" if unreliable == "exclude"
                    else "their shares are kept; pass unreliable='exclude' to leave them out")
            warnings.warn(UnreliableNeuronWarning(
                f"partition_variance: the signal power of {int(flagged.sum())} of {flagged.size} neurons is "
                "not distinguishable from zero (see skstrf.metrics.signal_power_reliability), so "
                f"shares of it are unreliable: {what}, or 'ignore'.",
                n_unreliable=int(flagged.sum()), n_neurons=int(flagged.size), neurons=np.flatnonzero(flagged)),
                stacklevel=3)
            if unreliable == "exclude":
                scores[:, flagged] = np.nan
    return scores, power, reliable, normalization


def _regions(scores: np.ndarray, subsets: list[tuple[int, ...]], n_spaces: int) -> np.ndarray:
    """The part explained by exactly the spaces of each subset, by inclusion-exclusion.

    With ``f(U)`` the score of the union of the spaces ``U`` (``f`` of nothing is 0), the part
    of exactly ``T`` is ``sum over non-empty S in T of (-1)**(|S| + 1) f(S + rest) - f(rest)``,
    ``rest`` the spaces outside ``T``.
    """
    index = {frozenset(s): j for j, s in enumerate(subsets)}
    everything = frozenset(range(n_spaces))

    def f(union: frozenset) -> np.ndarray:
        return np.zeros(scores.shape[1]) if not union else scores[index[union]]

    regions = []
    for subset in subsets:
        inside = frozenset(subset)
        rest = everything - inside
        part = -f(rest)
        for size in range(1, len(subset) + 1):
            for s in itertools.combinations(subset, size):
                part = part + (-1) ** (size + 1) * f(frozenset(s) | rest)
        regions.append(part)
    return np.stack(regions)
