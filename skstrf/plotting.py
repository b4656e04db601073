"""Matplotlib figures of fitted STRFs, training histories, predictions and scores."""

from __future__ import annotations

import numbers
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["plot_strfs", "plot_history", "plot_score_hist", "plot_paired_scores", "plot_prediction",
           "plot_cv_results", "plot_variance_partition"]


def _pyplot():
    # Imported on first use so that ``import skstrf`` never pulls in matplotlib.
    import matplotlib.pyplot as plt

    return plt


def _fitted(obj, attribute: str, what: str, name: str):
    """``obj.<attribute>`` for a fitted estimator or search, ``obj`` itself for plain data.

    An estimator without the attribute (not fitted yet) raises sklearn's NotFittedError
    instead of failing later on whatever the estimator object is not; text, which would
    otherwise be read character by character, is a TypeError naming the argument ``name``.
    """
    if hasattr(obj, attribute):
        return getattr(obj, attribute)
    if hasattr(obj, "fit"):
        from sklearn.exceptions import NotFittedError

        # scikit-learn's rule (check_is_fitted), which also serves duck-typed estimators
        fitted = (obj.__sklearn_is_fitted__() if hasattr(obj, "__sklearn_is_fitted__")
                  else any(k.endswith("_") and not k.startswith("__") for k in getattr(obj, "__dict__", ())))
        if not fitted:
            raise NotFittedError(
                f"This {type(obj).__name__} instance is not fitted yet (it has no {attribute}); "
                f"call 'fit' before plotting its {what}."
            )
        # fitted, but another kind of estimator: a search given for its best model, a pipeline
        hint = (" (for a search's best model pass search.best_estimator_)" if hasattr(obj, "best_estimator_")
                else " (for a pipeline pass its last step, pipeline[-1])" if hasattr(obj, "steps") else "")
        raise TypeError(f"{name} is a fitted {type(obj).__name__}, which has no {attribute}; expected {what} "
                        f"or an estimator that has it{hint}")
    if isinstance(obj, (str, bytes)):
        raise TypeError(f"{name} must be {what} or a fitted estimator; got a {type(obj).__name__}: {obj!r:.40}")
    return obj


def _kind(value: object) -> str:
    """A short description of a value's type for error messages ("a dict", "None")."""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    name = type(value).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def _real_array(value: object, name: str, expected: str, *, allow_bool: bool = True) -> np.ndarray:
    """``value`` as a float array, or a TypeError naming ``name`` and ``expected``.

    Text is refused even where it spells numbers ("0.5"), as the estimator refuses it in
    X; so are mappings, None, complex numbers and objects that are not numbers.
    """
    if value is None or isinstance(value, (str, bytes, Mapping)):
        raise TypeError(f"{name} must be {expected}; got {_kind(value)}")
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested sequences
        raise TypeError(f"{name} must be {expected}; got a ragged sequence ({exc})") from None
    kinds = "biuf" if allow_bool else "iuf"
    if array.dtype.kind == "O":
        try:
            array = array.astype(float)
        except (TypeError, ValueError):
            found = next((v for v in array.ravel() if not isinstance(v, numbers.Real)), None)
            raise TypeError(f"{name} must be {expected}; it holds {_kind(found)}: {found!r:.40}") from None
    elif array.dtype.kind not in kinds:
        what = {"U": "text", "S": "text", "c": "complex numbers", "b": "booleans"}.get(
            array.dtype.kind, f"values of dtype {array.dtype}")
        raise TypeError(f"{name} must be {expected}; got {what} (dtype {array.dtype})")
    return array.astype(float)


def _one_axis(array: np.ndarray, name: str, expected: str) -> np.ndarray:
    """``array`` as 1-D; singleton axes (MATLAB's (1, n) rows) are dropped, others refused."""
    if sum(size > 1 for size in array.shape) > 1:
        raise ValueError(f"{name} must be {expected}; got an array of shape {array.shape}")
    return array.ravel()


def _check_bool(value: object, name: str) -> None:
    # "no" and 0.0 are truthy or falsy by accident; a flag is a bool.
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")


def _check_names(value: object, name: str, expected: str) -> None:
    # A string is a sequence of characters: titles="model" would title panels "m", "o", ...
    if value is not None and (isinstance(value, (str, bytes, Mapping))
                              or not (hasattr(value, "__len__") and hasattr(value, "__getitem__"))):
        raise TypeError(f"{name} must be a list of str ({expected}) or None; got {_kind(value)}: {value!r:.40}")


def _check_index(value: object, name: str, size: int) -> int:
    """An integer index into an axis of ``size`` entries (a bool is not an index)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer in [0, {size}); got {value!r} ({type(value).__name__})")
    if not 0 <= value < size:
        raise ValueError(f"{name} must be an integer in [0, {size}); got {value!r}")
    return int(value)


def _check_axes(dt_ms: object, freqs: object, n_freqs: int, *,
                dt_optional: bool) -> tuple[float | None, np.ndarray | None]:
    """The frame duration and band frequencies that label a time and a frequency axis.

    Every figure with such axes checks them here, before anything is drawn: a negative
    or zero ``dt_ms`` would reverse or collapse the time axis, and frequencies that are
    not positive, finite and monotonic cannot be the centres of ``n_freqs`` bands.

    Returns
    -------
    dt_ms : float or None
    freqs : ndarray of shape (n_freqs,) or None
    """
    if dt_ms is None:
        if not dt_optional:
            raise TypeError("dt_ms must be a positive number of milliseconds (the frame duration); got None")
    elif isinstance(dt_ms, (bool, np.bool_)) or not isinstance(dt_ms, numbers.Real):
        none = " or None (lags in frames)" if dt_optional else ""
        raise TypeError(f"dt_ms must be a positive number of milliseconds (the frame duration){none}; "
                        f"got {dt_ms!r} ({type(dt_ms).__name__})")
    elif not (np.isfinite(dt_ms) and dt_ms > 0):
        raise ValueError(f"dt_ms must be a positive, finite frame duration in ms; got {dt_ms!r}")
    else:
        dt_ms = float(dt_ms)
    if freqs is None:
        return dt_ms, None
    expected = f"the centre frequency in Hz of each of the {n_freqs} bands, of shape ({n_freqs},)"
    freqs = _one_axis(_real_array(freqs, "freqs", expected, allow_bool=False), "freqs", expected)
    if freqs.size != n_freqs:
        raise ValueError(f"freqs must hold one frequency per band ({n_freqs}); got {freqs.size} values")
    bad = np.flatnonzero(~(np.isfinite(freqs) & (freqs > 0)))
    if bad.size:
        raise ValueError(f"freqs must be positive, finite frequencies in Hz; freqs[{bad[0]}] is {freqs[bad[0]]:g}"
                         f" ({bad.size} such value(s))")
    step = np.diff(freqs)
    if not (np.all(step > 0) or np.all(step < 0)):
        at = int(np.flatnonzero(step <= 0)[0] if step[0] > 0 else np.flatnonzero(step >= 0)[0])
        raise ValueError(
            f"freqs must be strictly increasing or strictly decreasing (one centre frequency per "
            f"band, in the order of X's bands); freqs[{at}] = {freqs[at]:g} is followed by "
            f"{freqs[at + 1]:g}"
        )
    return dt_ms, freqs


def _check_ncols(ncols: object) -> None:
    if ncols is not None and (isinstance(ncols, bool) or not isinstance(ncols, numbers.Integral)
                              or ncols < 1):
        raise ValueError(f"ncols must be a positive integer or None; got {ncols!r}")


def _neuron_index(neurons: object, n_neurons: int) -> np.ndarray:
    """Integer neuron indices (1-D), checked against ``n_neurons``."""
    index = np.asarray(neurons).ravel()
    if index.size and (index.dtype.kind not in "iu"):
        hint = " (for a boolean mask pass np.flatnonzero(mask))" if index.dtype.kind == "b" else ""
        raise ValueError(f"neurons must be integer indices{hint}; got {neurons!r}")
    bad = index[(index < -n_neurons) | (index >= n_neurons)]
    if bad.size:
        raise ValueError(f"neuron index {int(bad[0])} is out of range for {n_neurons} STRFs")
    return index.astype(int)


# ----------------------------------------------------------------------------- STRFs
_STRFS = ("an array of shape (n_strfs, n_freqs, n_lags) or (n_strfs, n_channels, n_freqs, n_lags), "
          "a sequence of (n_freqs, n_lags) arrays, or a fitted estimator")


_VIEWS = ("contributions", "weights")


def _strf_view(strfs, view: str | None, name: str = "strfs"):
    """What ``plot_strfs`` draws for ``strfs`` in ``view``, and whether it is contributions.

    A fitted estimator stands for its ``contributions_`` (``view`` None or "contributions")
    or its ``strfs_`` ("weights"); arrays are drawn as given, and only an estimator knows
    its bands' standard deviations, so "contributions" with arrays is refused.

    Returns
    -------
    strfs : fitted estimator attribute or the object given
    contributions : bool
    """
    if view is not None and (not isinstance(view, str) or view not in _VIEWS):
        raise ValueError(f"view must be 'contributions', 'weights' or None; got {view!r}")
    weights = _fitted(strfs, "strfs_", "STRFs", name)
    if weights is strfs:  # arrays, drawn as given
        if view == "contributions":
            raise ValueError(
                "view='contributions' needs a fitted estimator (it multiplies each band's weights "
                "by the band's standard deviation over the training frames, which only the "
                f"estimator knows); {name} is {_kind(strfs)}. Pass the estimator, or its "
                "contributions_ with view=None"
            )
        return strfs, False
    if view == "weights":
        return weights, False
    contributions = getattr(strfs, "contributions_", None)
    if contributions is not None:
        return contributions, True
    if view == "contributions":
        raise ValueError(
            f"view='contributions' needs the estimator's contributions_, and this "
            f"{type(strfs).__name__} has none (fitted by an older skstrf, or another library's "
            "estimator); refit it, or pass view='weights'"
        )
    if hasattr(strfs, "fit"):
        warnings.warn(
            f"this {type(strfs).__name__} has no contributions_ (fitted by an older skstrf?): "
            "drawing its weights (strfs_), on which near-silent bands can dominate; refit it for "
            "the contribution view, or pass view='weights' to silence this warning",
            UserWarning, stacklevel=3,
        )
    return weights, False


def _strf_stack(strfs, name: str) -> np.ndarray | list[np.ndarray]:
    """The kernels of ``strfs`` as one float array, or a list when their shapes differ."""
    strfs = _fitted(strfs, "strfs_", "STRFs", name)
    if strfs is None or isinstance(strfs, (Mapping, numbers.Number)):
        hint = " (for panel titles pass titles=list(d) with list(d.values()))" if isinstance(strfs, Mapping) else ""
        raise TypeError(f"{name} must be {_STRFS}; got {_kind(strfs)}{hint}")
    try:
        stack = np.asarray(strfs)
    except ValueError:  # kernels of different shapes: each is checked, then their shapes
        stack = None
    if stack is None or (stack.dtype.kind == "O" and stack.ndim == 1
                         and any(np.ndim(k) > 0 for k in stack)):
        kernels = [_real_array(k, f"{name}[{i}]", "a (n_freqs, n_lags) array of weights") for i, k in enumerate(strfs)]
        for i, k in enumerate(kernels):
            _check_weights(k, f"{name}[{i}]")
        return kernels
    stack = _real_array(stack, name, _STRFS)
    if stack.shape[:1] == (0,):
        raise ValueError(f"plot_strfs needs at least one STRF; {name} is empty (shape {stack.shape})")
    if stack.ndim == 2:
        raise ValueError(f"{name} has shape {stack.shape}, one 2-D kernel; expected {_STRFS}. For a "
                         f"single STRF pass {name}[None] or [{name}]")
    if stack.ndim not in (3, 4):
        raise ValueError(f"{name} must be {_STRFS}; got an array of shape {stack.shape}")
    _check_weights(stack, name)
    return stack


def _check_weights(kernels: np.ndarray, name: str) -> None:
    if 0 in kernels.shape:
        raise ValueError(f"{name} has shape {kernels.shape} with an empty axis; expected at least one band and lag")
    if np.isinf(kernels).any():
        # NaN is drawn blank (e.g. masked pixels); infinity has no colour on a finite scale.
        raise ValueError(f"{name} has infinite values; expected finite weights (NaN draws a blank pixel)")


def _strf_panels(strfs, neurons: Sequence[int] | None,
                 name: str = "strfs") -> tuple[list[np.ndarray], list[str] | None]:
    """The (n_freqs, n_lags) kernels to draw and, when neurons are picked, their default titles."""
    stack = _strf_stack(strfs, name)
    if neurons is not None:
        if isinstance(stack, list):
            raise ValueError(
                f"neurons= needs {name} of shape (n_neurons, n_freqs, n_lags) or (n_neurons, "
                f"n_channels, n_freqs, n_lags) or a fitted estimator; got kernels of shapes "
                f"{sorted({k.shape for k in stack})}"
            )
        index = _neuron_index(neurons, stack.shape[0])
        return list(stack[index]), [f"neuron {int(i)}" for i in index]
    return list(stack), None


def _split_channels(kernels: list[np.ndarray], titles: Sequence[str] | None,
                    channels: Sequence[str] | None) -> tuple[list[np.ndarray], list[str] | None, int]:
    """Turn each (n_channels, n_freqs, n_lags) kernel into n_channels panels side by side.

    Returns the panels, their titles (each STRF's title, if any, followed by the channel
    name) and the number of channels (1 when the kernels are 2-D and nothing changes).
    """
    if not kernels or kernels[0].ndim != 3:
        if channels is not None and kernels and all(k.ndim == 2 for k in kernels):
            raise ValueError(
                "channels names the input channels of STRFs of shape (n_strfs, n_channels, "
                "n_freqs, n_lags); these STRFs are 2-D (n_freqs, n_lags) kernels without channels"
            )
        return kernels, titles, 1
    if any(k.ndim != 3 for k in kernels) or len({k.shape for k in kernels}) != 1:
        raise ValueError(
            "STRFs with channels must all be 3-D (n_channels, n_freqs, n_lags) arrays of one "
            f"common shape; got shapes {sorted({k.shape for k in kernels})}"
        )
    n_channels = kernels[0].shape[0]
    if channels is None:
        channels = ("ON", "OFF") if n_channels == 2 else [f"channel {c}" for c in range(n_channels)]
    if len(channels) != n_channels:
        raise ValueError(f"got {len(channels)} channel names for STRFs with {n_channels} channels")
    if titles is not None and len(titles) != len(kernels):
        raise ValueError(f"got {len(titles)} titles for {len(kernels)} STRFs")
    panels = [k[c] for k in kernels for c in range(n_channels)]
    names = [name if titles is None else f"{titles[i]}, {name}"
             for i in range(len(kernels)) for name in channels]
    return panels, names, n_channels


def _format_khz(hz: float) -> str:
    """Frequency in kHz with 2-3 significant digits (0.5, 1, 2.83, 22.6)."""
    return f"{hz / 1000:.3g}"


def _frequency_ticks(freqs: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Band-axis tick positions and kHz labels for band centre frequencies ``freqs`` (Hz).

    ``freqs`` is positive and strictly monotonic (:func:`_check_axes`). Bands get ticks at
    round frequencies (whole octaves of 1 kHz: 0.5, 1, 2, 4, ...; on axes spanning less
    than two octaves also 0.75, 1.5, 3, ...), placed between bands by interpolating
    log-frequency, which reads far better than the arbitrary centre frequencies of the
    bands. Axes with fewer than 3 such frequencies get about 5 labelled bands.
    """
    n_freqs = freqs.size
    if n_freqs > 1:
        # bands listed from high to low are located on the increasing order, then mirrored
        rising = freqs if freqs[-1] > freqs[0] else freqs[::-1]
        octaves = 1000.0 * 2.0 ** np.arange(-6, 8)
        for candidates in (octaves, np.sort(np.concatenate([octaves, 1.5 * octaves]))):
            inside = candidates[(candidates >= rising[0]) & (candidates <= rising[-1])]
            if inside.size > 6:
                inside = inside[:: int(np.ceil(inside.size / 6))]
            if inside.size >= 3:
                where = np.interp(np.log2(inside), np.log2(rising), np.arange(n_freqs))
                where = where if rising is freqs else (n_freqs - 1) - where
                return where, [_format_khz(f) for f in inside]
    ticks = np.unique(np.linspace(0, n_freqs - 1, min(n_freqs, 5)).round().astype(int))
    return ticks, [_format_khz(freqs[t]) for t in ticks]


def plot_strfs(
    strfs,
    *,
    neurons: Sequence[int] | None = None,
    titles: Sequence[str] | None = None,
    dt_ms: float | None = 5.0,
    freqs: ArrayLike | None = None,
    shared_clim: bool = True,
    ncols: int | None = None,
    cmap: str = "RdBu_r",
    suptitle: str | None = None,
    figsize: tuple[float, float] | None = None,
    colorbar: bool = True,
    clabel: str | None = None,
    channels: Sequence[str] | None = None,
    significance=None,
    significance_style: str = "contour",
    view: str | None = None,
):
    """Draw STRFs as (frequency x lag) images on a diverging colour scale centred on 0.

    A fitted estimator is drawn, by default, as its **contributions** (``contributions_``):
    each band's weights times the band's standard deviation over the training frames, how
    far a typical fluctuation of the band moves the prediction. Bands that carry no signal
    (a log spectrogram's floor, whose standard deviation is 1e-7 to 1e-3 of the loud
    bands') then draw white whatever their weights, which can otherwise be the largest of
    the STRF and fill the colour scale (the evidence is in the user guide,
    :ref:`strf_figure`). ``view="weights"`` draws ``strfs_`` itself.

    Parameters
    ----------
    strfs : array-like of shape (n_strfs, n_freqs, n_lags), sequence of (n_freqs, n_lags) arrays, or fitted estimator
        Kernels to draw, e.g. ``est.contributions_[[3, 7]]`` or ``est.strfs_[[3, 7]]``,
        drawn as given; lag 0 is the current frame. A fitted
        :class:`~skstrf.STRFRegressor` stands for its ``contributions_`` or its ``strfs_``
        (``view``). STRFs with input channels,
        of shape (n_strfs, n_channels, n_freqs, n_lags) (e.g. ``strfs_`` of a model with
        the AdapTrans prefilter), are drawn one panel per channel, a STRF's channels side by
        side in one row.
    neurons : sequence of int, default=None
        Draw only these rows of ``strfs`` (of shape (n_neurons, n_freqs, n_lags)); panels
        are then titled "neuron i" unless ``titles`` is given.
    titles : sequence of str, default=None
        One title per panel.
    dt_ms : float or None, default=5.0
        Frame duration in ms (positive): the lag axis is drawn in ms. ``None`` draws lag
        indices.
    freqs : array-like of shape (n_freqs,), default=None
        Centre frequency of each band in Hz, positive and strictly increasing or strictly
        decreasing (bands listed from high to low); the frequency axis is then labelled in
        kHz. By default it shows band indices.
    shared_clim : bool, default=True
        One colour scale ``[-m, m]`` for all panels (``m`` the largest absolute value), or
        one per panel. Either way the scale is symmetric, so white is always 0.
    ncols : int, default=None
        Number of columns; at most 4 by default.
    cmap : str, default="RdBu_r"
        Diverging colour map (red excitatory, blue inhibitory).
    suptitle : str, default=None
        Figure title.
    figsize : (float, float), default=None
        Figure size in inches; chosen from the grid by default.
    colorbar : bool, default=True
        Draw colour bars (one for the figure with a shared scale, else one per panel).
    clabel : str, default=None
        Label of the colour bar; by default "contribution (weight × band SD)" for
        contributions and "weight" otherwise (arrays included).
    channels : sequence of str, default=None
        Names of the input channels of STRFs with channels, appended to the panel titles;
        by default ("ON", "OFF") for two channels.
    significance : array-like of bool of the shape of ``strfs``, or Bunch, default=None
        Significant pixels, e.g. ``jackknife_strfs(est, X, y).significant`` (the result of
        :func:`skstrf.inspection.jackknife_strfs` itself is accepted too). Rows are picked
        by ``neurons`` like the STRFs.
    significance_style : {"contour", "fade"}, default="contour"
        ``"contour"`` outlines the significant regions in black; ``"fade"`` veils the
        non-significant pixels in white so that only the significant ones keep their colour.
    view : {"contributions", "weights"} or None, default=None
        What a fitted estimator given as ``strfs`` is drawn as: "contributions" its
        ``contributions_``, "weights" its ``strfs_``. None: contributions for a fitted
        estimator (its weights, with a warning, if it has no ``contributions_``), arrays as
        given. Arrays cannot be drawn as contributions (only the estimator knows its bands'
        standard deviations): pass ``est.contributions_`` or the estimator itself.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    axes : ndarray of matplotlib.axes.Axes
        Flattened axes, one per STRF (unused grid cells are removed).

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.plotting import plot_strfs
    >>> fig, axes = plot_strfs(np.random.default_rng(0).normal(size=(3, 34, 15)),
    ...                        titles=["a", "b", "c"])
    >>> len(axes)
    3
    """
    plt = _pyplot()
    _check_ncols(ncols)
    _check_bool(shared_clim, "shared_clim")
    _check_bool(colorbar, "colorbar")
    _check_names(titles, "titles", "one title per panel")
    _check_names(channels, "channels", "one name per input channel")
    if significance_style not in ("contour", "fade"):
        raise ValueError(f"significance_style must be 'contour' or 'fade'; got {significance_style!r}")
    if clabel is not None and not isinstance(clabel, str):
        raise TypeError(f"clabel must be a str or None; got {_kind(clabel)}")
    strfs, contributions = _strf_view(strfs, view)
    if clabel is None:
        clabel = "contribution (weight × band SD)" if contributions else "weight"
    kernels, default_titles = _strf_panels(strfs, neurons)
    if not kernels:
        raise ValueError("plot_strfs needs at least one STRF")
    n_strfs = len(kernels)
    masks = None
    if significance is not None:
        mask = np.asarray(getattr(significance, "significant", significance))
        shape = np.shape(_fitted(strfs, "strfs_", "STRFs", "strfs"))
        if mask.shape != shape or mask.dtype.kind != "b":
            raise ValueError(
                f"significance must be a boolean array of the shape of the STRFs {shape}; got "
                f"{mask.dtype} of shape {mask.shape}"
            )
        masks = _split_channels(_strf_panels(mask.astype(float), neurons)[0], None, channels)[0]
    kernels, titles_by_channel, n_channels = _split_channels(
        kernels, default_titles if titles is None else titles, channels)
    if n_channels > 1:
        titles = default_titles = titles_by_channel
        if ncols is None:  # whole STRFs per row, at most 4 panels
            ncols = n_channels * max(1, min(n_strfs, 4 // n_channels))
    shapes = {k.shape for k in kernels}
    if any(k.ndim != 2 for k in kernels) or len(shapes) != 1:
        raise ValueError(
            f"each STRF must be a 2-D (n_freqs, n_lags) array of one common shape; got shapes {sorted(shapes)}"
        )
    titles = default_titles if titles is None else titles
    if titles is not None and len(titles) != len(kernels):
        raise ValueError(f"got {len(titles)} titles for {len(kernels)} STRFs")
    n_freqs, n_lags = kernels[0].shape
    dt_ms, freqs = _check_axes(dt_ms, freqs, n_freqs, dt_optional=True)
    n = len(kernels)
    ncols = min(n, 4) if ncols is None else ncols
    nrows = int(np.ceil(n / ncols))
    if figsize is None:
        figsize = (3.2 * ncols + (0.8 if colorbar else 0), 2.8 * nrows + (0.5 if suptitle else 0))
    fig, grid = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="constrained")
    axes = grid.ravel()
    for ax in axes[n:]:
        ax.remove()
    axes = axes[:n]
    limits = [np.max(np.abs(k), initial=0.0, where=~np.isnan(k)) for k in kernels]
    shared = max(limits)
    step = dt_ms if dt_ms is not None else 1.0
    images = []
    for i, (ax, k) in enumerate(zip(axes, kernels)):
        m = shared if shared_clim else limits[i]
        m = m if m > 0 else 1.0
        im = ax.imshow(
            k,
            origin="lower",
            aspect="auto",
            cmap=cmap,
            vmin=-m,
            vmax=m,
            # Pixel centres sit on the lags and bands themselves.
            extent=(-0.5 * step, (n_lags - 0.5) * step, -0.5, n_freqs - 0.5),
            interpolation="nearest",
        )
        images.append(im)
        if masks is not None:
            _draw_significance(ax, masks[i] > 0.5, step, significance_style)
        # Only the panels with nothing below them carry the lag label, so rows do not collide.
        if i + ncols >= n:
            ax.set_xlabel("lag (ms)" if dt_ms is not None else "lag (frames)")
        if i % ncols == 0:
            ax.set_ylabel("frequency (kHz)" if freqs is not None else "frequency band")
        if freqs is not None:
            ax.set_yticks(*_frequency_ticks(freqs))
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
        if colorbar and not shared_clim:
            fig.colorbar(im, ax=ax, shrink=0.85, label=clabel)
    if colorbar and shared_clim:
        fig.colorbar(images[0], ax=list(axes), shrink=0.85, label=clabel)
    if suptitle:
        fig.suptitle(suptitle)
    return fig, np.asarray(axes)


def _draw_significance(ax, mask: np.ndarray, step: float, style: str) -> None:
    """Outline the significant pixels of one (n_freqs, n_lags) panel, or veil the others."""
    n_freqs, n_lags = mask.shape
    extent = (-0.5 * step, (n_lags - 0.5) * step, -0.5, n_freqs - 0.5)
    if style == "fade":
        veil = np.zeros(mask.shape + (4,))
        veil[..., :3] = 1.0
        veil[..., 3] = np.where(mask, 0.0, 0.7)
        ax.imshow(veil, origin="lower", aspect="auto", extent=extent, interpolation="nearest")
        return
    if mask.any() and not mask.all():
        # Contour of the mask upsampled to pixel edges: the outline follows pixel borders.
        fine = np.kron(mask.astype(float), np.ones((8, 8)))
        lags = (np.arange(fine.shape[1]) + 0.5) / 8 - 0.5
        bands = (np.arange(fine.shape[0]) + 0.5) / 8 - 0.5
        ax.contour(lags * step, bands, fine, levels=[0.5], colors="black", linewidths=1.0)
    ax.set_xlim(extent[:2])
    ax.set_ylim(extent[2:])


# --------------------------------------------------------------------------- history
_HISTORY = "a fitted estimator, its history_ or a list of per-epoch dicts"


def _history_records(history, name: str) -> list[dict]:
    """Per-epoch records of a skorch History, a fitted estimator or a list of dicts."""
    history = _fitted(history, "history_", "a training history", name)
    if history is None or isinstance(history, (Mapping, numbers.Number)) or not hasattr(history, "__iter__"):
        raise TypeError(f"{name} must be {_HISTORY}; got {_kind(history)}")
    records = list(history)
    if not records:
        raise ValueError(f"{name} has no epochs; expected {_HISTORY} with at least one epoch")
    for i, row in enumerate(records):
        if not isinstance(row, Mapping):
            several = hasattr(row, "fit") or (hasattr(row, "__iter__") and not isinstance(row, (str, bytes)))
            hint = "; to overlay several fits pass a dict of label -> history" if several else ""
            raise TypeError(f"{name}[{i}] is {_kind(row)}; expected a dict per epoch (keys 'epoch', "
                            f"'train_loss', 'valid_loss', 'valid_cc_norm'){hint}")
    return [dict(row) for row in records]


def _column(records: list[dict], key: str, name: str) -> np.ndarray | None:
    """``key`` of every epoch as floats, or None when some epoch lacks it."""
    if not all(key in r for r in records):
        return None
    values = [np.nan if r[key] is None else r[key] for r in records]
    for i, value in enumerate(values):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}[{i}][{key!r}] is {value!r:.40}; expected a number")
    return np.array(values, dtype=float)


def _stored_model(history, records: list[dict]) -> tuple[int | None, float | None, bool]:
    """Which model a fit stored, from its history (and, for a fitted estimator, its
    attributes): the number of the validated epoch that chose the final fit's length (its
    count of ``refit`` rows, or ``n_refit_epochs_``; None without a final fit), for an
    estimator that kept its start the start's validation cc_norm (else None), and whether
    it is known to be a gradient fit (an estimator whose net records ``kept_start_``)."""
    n_refit = sum(1 for row in records if row.get("refit") is True)
    chosen = getattr(history, "n_refit_epochs_", None) if hasattr(history, "fit") else None
    chosen = chosen if chosen else (n_refit or None)
    net = getattr(history, "net_", None) if hasattr(history, "fit") else None
    kept = getattr(net, "kept_start_", False) is True
    start = getattr(net, "start_valid_cc_norm_", None) if kept else None
    start = float(start) if isinstance(start, numbers.Real) and np.isfinite(start) else None
    return (None if kept else chosen), start, hasattr(net, "kept_start_")


def plot_history(histories, *, figsize: tuple[float, float] = (12, 4)):
    """Training and validation loss and validation cc_norm per epoch, several fits overlaid,
    with the model each fit stored marked.

    Each fit gets one colour: its training loss dashed, its validation loss solid. What the
    fit stored is marked:

    * a filled star on the epoch with the best validation cc_norm, the one early stopping
      restores, for a fit that stored it;
    * for a model fitted again on every stimulus after validation (``history_`` rows with
      ``refit=True``, see :class:`~skstrf.STRFRegressor`'s ``n_refit_epochs_``): a hollow
      star on the validated epoch whose number of epochs the final fit repeated (the stored
      model is not that epoch's weights), the final fit's training loss dash-dotted after
      the validated epochs (it has no validation entries), and a diamond on its last epoch,
      the stored model;
    * for a fitted estimator that kept its start (``net_.kept_start_``: no epoch beat it on
      the validation stimuli), no star, and a diamond at epoch 0 on the start's validation
      cc_norm.

    A fit with a single epoch (a closed-form solver; not a gradient-trained estimator) is
    drawn as markers at epoch 1 (hollow for training, filled for validation) with dotted
    horizontal lines across the plot, a reference level for the gradient fits. One legend, right of the panels, names the
    fits, the line styles and the markers drawn.

    Parameters
    ----------
    histories : mapping of str to history, or one history
        Label -> a fitted :class:`~skstrf.STRFRegressor`, its ``history_`` or a list of
        per-epoch dicts with keys ``epoch``, ``train_loss``, ``valid_loss`` and
        ``valid_cc_norm``, and ``refit`` (True on the epochs of a final fit on every
        stimulus). Keys missing from some epoch of the validated run (the epochs without
        ``refit=True``) are not drawn. A single history is labelled "fit".
    figsize : (float, float), default=(12, 4)
        Figure size in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    axes : ndarray of 2 matplotlib.axes.Axes
        Loss and validation cc_norm. Each drawn line is labelled "<fit> (train)",
        "<fit> (valid)", "<fit> (final fit)" (loss) or "<fit>" (cc_norm); the markers
        "_best epoch of <fit>", "_validated epoch of <fit>" and "_stored model of <fit>"
        (hidden from legends).
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D

    if not isinstance(histories, Mapping):
        names = {"fit": "histories"}
        histories = {"fit": histories}
    else:
        names = {label: f"histories[{label!r}]" for label in histories}
        if not histories:
            raise ValueError(f"histories is empty; expected one history ({_HISTORY}) or a dict of label -> history")
        if all(isinstance(v, numbers.Number) for v in histories.values()):
            raise TypeError(
                f"histories looks like one epoch's record (numbers under the keys {list(histories)[:6]}); "
                f"expected {_HISTORY} (all epochs, not one), or a dict of label -> history"
            )
    # Every fit is read and checked before anything is drawn.
    keys = ("epoch", "train_loss", "valid_loss", "valid_cc_norm")
    fits = {}
    for label, history in histories.items():
        records = _history_records(history, names[label])
        positions = np.arange(1, len(records) + 1, dtype=float)
        final = [row.get("refit") is True for row in records]
        runs = {}
        for run, rows in (("validated", [r for r, f in zip(records, final) if not f]),
                          ("final", [r for r, f in zip(records, final) if f])):
            columns = {key: _column(rows, key, names[label]) if rows else None for key in keys}
            if rows and columns["epoch"] is None:
                columns["epoch"] = positions[[f == (run == "final") for f in final]]
            runs[run] = columns
        fits[label] = (runs, *_stored_model(history, records))
    fig, axes = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    handles, closed_form, iterative, drawn = [], set(), False, set()
    for i, (label, (runs, chosen, start, gradient)) in enumerate(fits.items()):
        color = f"C{i}"
        handles.append(Line2D([], [], color=color, lw=2.5, label=label))
        columns = runs["validated"]
        epochs = columns["epoch"]
        panels = [(0, "train_loss", "--", "none", f"{label} (train)"),
                  (0, "valid_loss", "-", color, f"{label} (valid)"),
                  (1, "valid_cc_norm", "-", color, label)]
        for panel, key, ls, face, name in panels:
            values = columns[key]
            if values is None:
                continue
            ax = axes[panel]
            if len(values) == 1 and runs["final"]["train_loss"] is None and not gradient:
                closed_form.add("\u25cb training" if key == "train_loss" else "\u25cf validation")
                ax.axhline(values[0], color=color, ls=":", lw=1)
                ax.plot(epochs, values, color=color, mfc=face, marker="o", ls="none", label=name)
            else:
                iterative = True
                ax.plot(epochs, values, color=color, ls=ls, lw=1 if ls == "--" else 1.5, label=name,
                        marker="o" if len(values) == 1 else None, mfc=face)  # one epoch: a point
        scores = columns["valid_cc_norm"]
        star = dict(color=color, marker="*", ms=12, ls="none", markeredgecolor="black", markeredgewidth=0.5)
        diamond = dict(color=color, marker="D", ms=7, ls="none", markeredgecolor="black", markeredgewidth=0.5)
        refit = runs["final"]
        if refit["train_loss"] is not None:
            axes[0].plot(refit["epoch"], refit["train_loss"], color=color, ls="-.", lw=1.2, label=f"{label} (final fit)")
            # "_" keeps the markers out of any legend a caller adds to the panel
            axes[0].plot(refit["epoch"][-1:], refit["train_loss"][-1:], **diamond, label=f"_stored model of {label}")
            drawn.update({"final", "stored"})
        if start is not None:
            axes[1].plot([0], [start], **diamond, label=f"_stored model of {label}")
            drawn.add("start")
        elif scores is not None and chosen is not None and 0 < chosen <= len(scores):
            axes[1].plot(epochs[chosen - 1], scores[chosen - 1], **{**star, "mfc": "white"},
                         label=f"_validated epoch of {label}")
            drawn.add("validated")
        elif scores is not None and len(scores) > 1 and np.isfinite(scores).any():
            best = int(np.nanargmax(scores))
            axes[1].plot(epochs[best], scores[best], **star, label=f"_best epoch of {label}")
            drawn.add("best")
    if iterative:
        handles += [Line2D([], [], color="0.3", ls="--", lw=1, label="training loss"),
                    Line2D([], [], color="0.3", ls="-", lw=1.5, label="validation")]
    marker = dict(color="0.3", ls="none", markeredgecolor="black", markeredgewidth=0.5)
    if "best" in drawn:
        handles.append(Line2D([], [], marker="*", ms=10, label="best epoch (restored)", **marker))
    if "validated" in drawn:
        handles.append(Line2D([], [], marker="*", ms=10, mfc="white",
                              label="best validated epoch\n(its number of epochs\nrepeated by the final fit)", **marker))
    if "final" in drawn:
        handles.append(Line2D([], [], color="0.3", ls="-.", lw=1.2, label="final fit on every stimulus\n(training loss)"))
    if "stored" in drawn or "start" in drawn:
        stored = [text for key, text in (("stored", "end of the final fit"), ("start", "kept start, epoch 0"))
                  if key in drawn]
        handles.append(Line2D([], [], marker="D", ms=6, label=f"stored model\n({'; '.join(stored)})", **marker))
    if closed_form:
        # only the markers drawn are named (a cross-validated fit records no validation)
        shown = ", ".join(sorted(closed_form))  # training (U+25CB) first
        handles.append(Line2D([], [], color="0.3", ls=":", marker="o", mfc="0.3", lw=1,
                              label=f"closed form (one solve;\n{shown})"))
    axes[0].set(xlabel="epoch", ylabel="MSE (units of PSTH variance)", title="Loss")
    axes[1].set(xlabel="epoch", ylabel="validation cc_norm", title="Validation cc_norm")
    for ax in axes:
        # Integer epochs: no tick at 1.5.
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    return fig, axes


# ---------------------------------------------------------------------- score histogram
def _score_arrays(scores: Mapping[Any, Any], names: Mapping[Any, str]) -> dict[Any, np.ndarray]:
    """Label -> per-neuron scores as a 1-D float array, each checked and named in errors."""
    expected = "per-neuron scores, an array-like of shape (n_neurons,)"
    out = {}
    for label, values in scores.items():
        name = names[label]
        array = _real_array(values, name, expected, allow_bool=False)
        if array.ndim == 0:
            raise ValueError(f"{name} is a single number ({float(array):g}); expected one score per "
                             "neuron (e.g. cc_norm(..., multioutput='raw_values'))")
        if sum(size > 1 for size in array.shape) > 1:
            raise ValueError(f"{name} has shape {array.shape}; expected one score per neuron, of shape "
                             "(n_neurons,). Scores of shape (n_folds, n_neurons) from cross-validation: "
                             "average over the folds first (np.nanmean(scores, axis=0))")
        array = array.ravel()
        if array.size == 0:
            raise ValueError(f"{name} is empty; expected one score per neuron")
        infinite = np.flatnonzero(np.isinf(array))
        if infinite.size:
            raise ValueError(f"{name} has infinite values (first at neuron {infinite[0]}); expected finite "
                             "scores, NaN where a score is undefined")
        out[label] = array
    return out


def plot_score_hist(
    scores: Mapping[str, ArrayLike],
    *,
    bins=None,
    xlabel: str = "test cc_norm",
    title: str | None = "Per-cell test cc_norm",
    figsize: tuple[float, float] = (8, 3.8),
):
    """Overlaid histograms of per-cell scores of several models, with their means.

    Parameters
    ----------
    scores : mapping of str to array-like of shape (n_neurons,), or array-like of shape (n_neurons,)
        Label -> per-neuron score (NaN entries are left out and counted in the legend).
        A single array is one model, labelled "scores".
    bins : int or array-like, default=None
        Histogram bins; by default bins of width 0.025 from min(0, lowest) to
        max(1, highest), or 100 equal bins when that range is wider than 10 (scores of
        unreliable neurons can be far above 1).
    xlabel : str, default="test cc_norm"
        Label of the score axis.
    title : str or None, default="Per-cell test cc_norm"
        Axes title.
    figsize : (float, float), default=(8, 3.8)
        Figure size in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    ax : matplotlib.axes.Axes
        The histogram axes: each model's histogram is an outline of its colour (filled
        faintly when there are at most three models), its mean a dashed vertical line.
    """
    plt = _pyplot()
    if not isinstance(scores, Mapping):
        if isinstance(scores, (str, bytes)):
            raise TypeError(f"scores must be a mapping of model name to per-neuron scores or "
                            f"an array of scores; got a {type(scores).__name__}")
        scores, names = {"scores": scores}, {"scores": "scores"}
    else:
        names = {label: f"scores[{label!r}]" for label in scores}
    if not scores:
        raise ValueError("plot_score_hist needs at least one model's scores")
    _check_bins(bins)
    values = _score_arrays(scores, names)
    finite = [v[np.isfinite(v)] for v in values.values()]
    if bins is None:
        lo = min([0.0] + [v.min() for v in finite if v.size])
        hi = max([1.0] + [v.max() for v in finite if v.size])
        # Edges on multiples of 0.025 so that 0 and 1 are bin edges; a wide range (scores
        # of unreliable neurons can be far above 1) gets 100 bins instead of millions.
        lo, hi = np.floor(lo * 40) / 40, np.ceil(hi * 40) / 40
        bins = np.arange(lo, hi + 1e-9, 0.025) if hi - lo <= 10 else np.linspace(lo, hi, 101)
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    for i, (label, v) in enumerate(values.items()):
        ok = np.isfinite(v)
        mean = np.mean(v[ok]) if ok.any() else np.nan
        extra = f", {np.count_nonzero(~ok)} NaN" if (~ok).any() else ""
        # A faint fill plus a full-colour outline keeps a few overlapping histograms apart;
        # beyond three, the fills would mix into colours of no model, so outlines only.
        if len(values) <= 3:
            ax.hist(v[ok], bins=bins, histtype="stepfilled", alpha=0.2, color=f"C{i}")
        ax.hist(v[ok], bins=bins, histtype="step", lw=1.8, color=f"C{i}",
                label=f"{label} (mean {mean:.3f}{extra})")
        if np.isfinite(mean):
            ax.axvline(mean, color=f"C{i}", ls="--", lw=1.5)
    ax.set(xlabel=xlabel, ylabel="number of neurons")
    ax.yaxis.get_major_locator().set_params(integer=True)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, title="dashed lines: means", title_fontsize=8)
    return fig, ax


def _check_bins(bins: object) -> None:
    # numpy's own messages name neither plot_score_hist nor the argument
    if bins is None or isinstance(bins, str):
        return  # numpy's named estimators ("auto", "fd", ...) are passed through
    if isinstance(bins, (bool, np.bool_)) or (isinstance(bins, numbers.Number)
                                              and not isinstance(bins, numbers.Integral)):
        raise TypeError(f"bins must be a positive integer, a sequence of increasing edges or None; got {bins!r}")
    if isinstance(bins, numbers.Integral):
        if bins < 1:
            raise ValueError(f"bins must be a positive number of bins; got {bins!r}")
        return
    edges = _one_axis(_real_array(bins, "bins", "a sequence of bin edges", allow_bool=False), "bins",
                      "a 1-D sequence of bin edges")
    if edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bins must be at least 2 finite, strictly increasing edges; got {edges.tolist()!r:.80}")


# ------------------------------------------------------------------------ paired scores
def plot_paired_scores(
    scores: Mapping[str, ArrayLike],
    *,
    metric: str = "test cc_norm",
    figsize: tuple[float, float] | None = None,
):
    """Per-neuron scores of models against each other: one scatter per pair of models.

    Each dot is a neuron, at (score under model A, score under model B); dots above the
    identity line are neurons that model B fits better. Each panel's title gives the
    :func:`skstrf.significance.paired_comparison` counts and the Wilcoxon signed-rank
    p-value (Holm-corrected over the pairs when there are more than two models). With
    ``k`` models the panels form a lower-triangular grid: row ``j`` is model ``j + 1`` on
    the y axis, column ``i`` model ``i`` on the x axis.

    Parameters
    ----------
    scores : mapping of str to array-like of shape (n_neurons,)
        Model name -> per-neuron score, the same neurons in the same order for every model
        (at least two models). Neurons with a NaN score under either model of a pair are
        left out of that panel.
    metric : str, default="test cc_norm"
        Name of the score for the axis labels.
    figsize : (float, float), default=None
        Figure size in inches; chosen from the number of models by default.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    axes : ndarray of matplotlib.axes.Axes
        One per pair of models, in the order of
        :func:`skstrf.significance.pairwise_comparisons` (unused grid cells are removed).

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.plotting import plot_paired_scores
    >>> rng = np.random.default_rng(0)
    >>> a = rng.uniform(0.2, 0.8, size=50)
    >>> fig, axes = plot_paired_scores({"vanilla": a, "separable": a - 0.1,
    ...                                 "parametric": a - 0.05})
    >>> len(axes)
    3
    """
    from .significance import pairwise_comparisons

    if not isinstance(scores, Mapping):
        raise TypeError(f"scores must be a mapping of model name to per-neuron scores; got a "
                        f"{type(scores).__name__}")
    names = list(scores)
    if len(names) < 2:
        raise ValueError(f"plot_paired_scores needs the scores of at least two models; got {names}")
    not_text = [name for name in names if not isinstance(name, str)]
    if not_text:
        raise TypeError(f"scores must be keyed by model name (str); got the key {not_text[0]!r}")
    values = _score_arrays(scores, {name: f"scores[{name!r}]" for name in names})
    sizes = {name: v.size for name, v in values.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"scores must hold one score per neuron, the same neurons for every model; got "
                         f"{sizes} neurons")
    rows = pairwise_comparisons(values, correction="holm" if len(names) > 2 else None)
    finite = np.concatenate([v[np.isfinite(v)] for v in values.values()])
    lo, hi = (min(0.0, finite.min()), max(1.0, finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.03 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    n = len(names) - 1
    plt = _pyplot()
    if figsize is None:
        figsize = (3.6 * n + 0.4, 3.6 * n + 0.3)
    fig, grid = plt.subplots(n, n, figsize=figsize, squeeze=False, layout="constrained")
    used = []
    for row in rows:
        i, j = names.index(row.model_a), names.index(row.model_b)
        ax = grid[j - 1, i]
        used.append(ax)
        a, b = values[row.model_a], values[row.model_b]
        both = np.isfinite(a) & np.isfinite(b)
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls="--", zorder=1)
        ax.scatter(a[both], b[both], s=14, alpha=0.7, color="C0", edgecolors="none", zorder=2)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        # the correction is named, with the number of pairs it corrects over
        p = row.pvalue if len(rows) < 2 else row.pvalue_corrected
        which = "p" if len(rows) < 2 else f"Holm p ({len(rows)} pairs)"
        ax.set_title(f"{row.model_b} higher: {row.n_worse}/{row.n_neurons}\n"
                     f"median {-row.median_difference:+.3f}, {which} = {p:.2g}", fontsize=9)
        if j == n:
            ax.set_xlabel(f"{row.model_a} ({metric})")
        if i == 0:
            ax.set_ylabel(f"{row.model_b} ({metric})")
    for ax in grid.ravel():
        if not any(ax is u for u in used):
            ax.remove()
    return fig, np.asarray(used)


# ------------------------------------------------------------------------ prediction
def _check_time_range(time_range: object) -> tuple[float, float] | None:
    if time_range is None:
        return None
    expected = "(start, stop) in ms from the stimulus onset, or None"
    window = _real_array(time_range, "time_range", expected, allow_bool=False)
    if window.shape != (2,):
        raise ValueError(f"time_range must be {expected}; got {time_range!r:.60}")
    if not (np.all(np.isfinite(window)) and window[0] < window[1]):
        raise ValueError(f"time_range must be two finite times in ms with start < stop; got {time_range!r:.60}")
    return float(window[0]), float(window[1])


def _prediction_for(est_or_pred, X, data, stimulus: int) -> np.ndarray:
    """Prediction of stimulus ``stimulus`` as an array of shape (n_times, n_neurons)."""
    n_stimuli, n_times, n_neurons = data.y.shape[:3]
    if hasattr(est_or_pred, "predict"):
        # Predict the one stimulus only: through the user's own X layout, so that a Pipeline
        # sees what it was fitted on.
        X_one = np.asarray(X)[[stimulus]] if data.x_ndim == 3 else X
        pred = np.asarray(est_or_pred.predict(X_one), dtype=float)
        pred = pred[0] if data.x_ndim == 3 else pred
        return pred.reshape(n_times, -1) if pred.ndim == 1 else pred
    expected = (n_stimuli, n_times, n_neurons)
    shape = expected if data.x_ndim == 3 else expected[1:]
    pred = _real_array(est_or_pred, "est_or_pred", f"a fitted estimator or its predictions for X, of shape {shape}")
    canonical = pred[None] if data.x_ndim == 2 else pred
    if data.y_layout == "neuron" and canonical.ndim == 2:
        canonical = canonical[..., None]
    if canonical.shape != expected:
        raise ValueError(
            f"the prediction has shape {pred.shape}, which does not match y: expected predict()'s "
            f"layout, i.e. {expected if data.x_ndim == 3 else expected[1:]} without a repeats axis "
            "(or a fitted estimator)"
        )
    return canonical[stimulus]


def plot_prediction(
    est_or_pred,
    X,
    y,
    *,
    neuron: int = 0,
    stimulus: int = 0,
    dt_ms: float = 5.0,
    freqs: ArrayLike | None = None,
    repeats: str = "auto",
    spectrogram: bool = True,
    time_range: tuple[float, float] | None = None,
    ylabel: str = "response",
    figsize: tuple[float, float] | None = None,
):
    """A model's prediction of one neuron's response to one stimulus, with the data.

    Draws, sharing one time axis in ms: the stimulus spectrogram (optional), the single
    repeats (as thin grey lines or as a raster), the PSTH (their mean) and the prediction.
    The legend gives the correlation between prediction and PSTH on this stimulus,
    :func:`skstrf.metrics.cc` of the stimulus drawn.

    Parameters
    ----------
    est_or_pred : fitted estimator or array-like
        A fitted :class:`~skstrf.STRFRegressor` (or pipeline ending in one), or its
        predictions for ``X`` in the layout of ``predict``: of shape
        (n_stimuli, n_times, n_neurons) for 3-D X.
    X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
        Stimuli, NaN-padded at the end.
    y : array-like of shape (n_stimuli, n_times, n_neurons, n_repeats)
        Responses in any layout of the data contract (without the repeats axis only the
        PSTH is drawn).
    neuron : int, default=0
        Neuron to draw.
    stimulus : int, default=0
        Stimulus to draw (ignored for 2-D X).
    dt_ms : float, default=5.0
        Frame duration in ms (positive).
    freqs : array-like of shape (n_freqs,), default=None
        Band centre frequencies in Hz for the spectrogram's axis (band indices by default),
        positive and strictly increasing or strictly decreasing.
    repeats : {"auto", "lines", "raster", "none"}, default="auto"
        How to draw the single repeats: grey lines behind the PSTH, a raster in a panel of
        its own (a tick wherever a repeat is above 0, e.g. frames with a spike), or not at
        all. "auto" draws a raster for spike counts (non-negative integers), whose single
        trials would otherwise dwarf the PSTH, and lines for anything else.
    spectrogram : bool, default=True
        Draw the stimulus in a panel above the responses.
    time_range : (float, float), default=None
        Time window to show, in ms from the stimulus onset (the whole stimulus by
        default). The correlation in the legend is always over the whole stimulus.
    ylabel : str, default="response"
        Label of the response axis; name the units, e.g. "spikes per 5 ms".
    figsize : (float, float), default=None
        Figure size in inches; chosen from the number of panels by default.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    axes : ndarray of matplotlib.axes.Axes
        The panels from top to bottom: spectrogram (if drawn), raster (if
        ``repeats="raster"``) and responses (always last).
    """
    from sklearn.exceptions import UndefinedMetricWarning

    from ._validation import check_responses, check_stimuli
    from .metrics import cc

    if not isinstance(repeats, str) or repeats not in ("auto", "lines", "raster", "none"):
        raise ValueError(f"repeats must be 'auto', 'lines', 'raster' or 'none'; got {repeats!r}")
    _check_bool(spectrogram, "spectrogram")
    if y is None:
        raise ValueError("y is None; plot_prediction needs the recorded responses to X")
    data = check_responses(y, check_stimuli(X))
    n_stimuli, _, n_neurons, n_repeats = data.y.shape
    neuron = _check_index(neuron, "neuron", n_neurons)
    # one recording (2-D X) is stimulus 0 whatever ``stimulus`` says, as documented
    stimulus = 0 if data.x_ndim == 2 else _check_index(stimulus, "stimulus", n_stimuli)
    dt_ms, freqs = _check_axes(dt_ms, freqs, data.X.shape[2], dt_optional=False)
    time_range = _check_time_range(time_range)
    pred = _prediction_for(est_or_pred, X, data, stimulus)
    length = int(data.lengths[stimulus])
    prediction = pred[:length, neuron]
    bad = np.flatnonzero(~np.isfinite(prediction))
    if bad.size:
        raise ValueError(
            f"the prediction of neuron {neuron} for stimulus {stimulus} is not finite at {bad.size} valid "
            f"frame(s) (first at frame {bad[0]}: {prediction[bad[0]]}); expected finite predictions wherever "
            "X is not padding"
        )
    times = np.arange(length) * dt_ms
    trials = data.y[stimulus, :length, neuron]  # (T, R)
    # The library's correlation, pooled as in score: the number drawn is cc's.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # said in the legend instead
        r = cc(trials[:, None, :], prediction[:, None])
    trials = trials[:, np.isfinite(trials).all(axis=0)]  # drop missing repeats
    psth = data.psth()[stimulus, :length, neuron]
    if repeats == "auto":
        counts = trials.size and np.all(trials >= 0) and np.all(trials == np.round(trials))
        repeats = "raster" if counts else "lines"

    plt = _pyplot()
    show_trials = repeats != "none" and n_repeats > 1
    kinds = (["spectrogram"] if spectrogram else []) + (["raster"] if show_trials and repeats == "raster" else [])
    kinds.append("response")
    heights = {"spectrogram": 1.0, "raster": 1.0, "response": 1.4}
    if figsize is None:
        figsize = (9, 1.6 + 1.5 * sum(heights[k] for k in kinds))
    fig, axes = plt.subplots(len(kinds), 1, figsize=figsize, sharex=True, squeeze=False, layout="constrained",
                             gridspec_kw={"height_ratios": [heights[k] for k in kinds]})
    axes = axes[:, 0]
    panel = dict(zip(kinds, axes))
    if spectrogram:
        ax = panel["spectrogram"]
        n_freqs = data.X.shape[2]
        ax.imshow(data.X[stimulus, :length].T, origin="lower", aspect="auto", cmap="magma",
                  extent=(-0.5 * dt_ms, (length - 0.5) * dt_ms, -0.5, n_freqs - 0.5), interpolation="nearest")
        if freqs is not None:
            ax.set_yticks(*_frequency_ticks(freqs))
        ax.set_ylabel("frequency (kHz)" if freqs is not None else "frequency band")
        ax.set_title("stimulus spectrogram", fontsize=10, loc="left")
    if "raster" in panel:
        ax = panel["raster"]
        events = [times[trials[:, j] > 0] for j in range(trials.shape[1])]
        ax.eventplot(events, colors="black", linelengths=0.8, linewidths=0.8)
        ax.set_ylim(-0.5, trials.shape[1] - 0.5)
        ax.set_ylabel("repeat")
        ax.set_title(f"{trials.shape[1]} repeats", fontsize=10, loc="left")
    ax = panel["response"]
    if show_trials and repeats == "lines":
        lines = ax.plot(times, trials, color="0.65", lw=0.5, alpha=0.6)
        lines[0].set_label(f"single repeats ({trials.shape[1]})")
    psth_label = f"PSTH (mean of {trials.shape[1]} repeats)" if n_repeats > 1 else "response"
    ax.plot(times, psth, color="black", lw=1.3, label=psth_label)
    score = f"cc = {r:.2f}" if np.isfinite(r) else "cc undefined: a constant prediction or response"
    ax.plot(times, prediction, color="C3", lw=1.5, label=f"prediction ({score})")
    xlim = (times[0] - 0.5 * dt_ms, times[-1] + 0.5 * dt_ms) if time_range is None else tuple(time_range)
    ax.set(xlabel="time (ms)", ylabel=ylabel, xlim=xlim)
    ax.set_title(f"neuron {neuron}, stimulus {stimulus}", fontsize=10, loc="left")
    # Above the panel, right of its title, so that it never covers a response peak.
    ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3, frameon=False,
              borderaxespad=0.1)
    return fig, axes


# ------------------------------------------------------------------------ CV results
def _short_names(names: Sequence[str]) -> dict[str, str]:
    """Parameter names without pipeline prefixes (``strfregressor__alpha`` -> ``alpha``) when unambiguous."""
    short = {name: name.split("__")[-1] for name in names}
    if len(set(short.values())) < len(short):
        return {name: name for name in names}
    return short


def _describe(params: Mapping[str, Any], short: Mapping[str, str]) -> str:
    return ", ".join(f"{short[k]}={_format_value(v)}" for k, v in params.items())


def _format_value(value: Any) -> str:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return f"{value:g}"
    return str(value)


def _cv_table(cv_results) -> tuple[Mapping[str, Any], list[dict]]:
    """The cv_results_ dict of a search (or the search itself) and its candidates' parameters."""
    results = _fitted(cv_results, "cv_results_", "cross-validation results (a search's cv_results_)",
                      "cv_results")
    if hasattr(results, "columns") and hasattr(results, "to_dict"):
        # pandas.DataFrame(search.cv_results_), the usual way to look at them
        results = {column: results[column].to_numpy() for column in results.columns}
    if not isinstance(results, Mapping):
        raise TypeError(f"cv_results must be a search's cv_results_ (a dict of columns) or the fitted "
                        f"search; got {_kind(results)}")
    if "params" not in results:
        raise ValueError(f"cv_results has no 'params' entry (the list of each candidate's parameters); "
                         f"pass search.cv_results_ or the fitted search. Keys: {sorted(map(str, results))[:10]}")
    params = results["params"]
    if isinstance(params, (str, bytes, Mapping)) or not hasattr(params, "__iter__"):
        raise TypeError(f"cv_results['params'] must be a list of dicts, one per candidate; got {_kind(params)}")
    candidates = list(params)
    if not candidates:
        raise ValueError("cv_results['params'] is empty; there is no candidate to draw")
    for i, p in enumerate(candidates):
        if not isinstance(p, Mapping):
            raise TypeError(f"cv_results['params'][{i}] is {_kind(p)}; expected a dict of parameter values")
    return results, [dict(p) for p in candidates]


def _cv_column(results: Mapping[str, Any], key: str, n_candidates: int) -> np.ndarray:
    """Column ``key`` of cv_results as floats, one per candidate."""
    column = _real_array(results[key], f"cv_results[{key!r}]", "one number per candidate")
    if column.shape != (n_candidates,):
        raise ValueError(f"cv_results[{key!r}] has shape {column.shape}; expected one value per candidate "
                         f"({n_candidates}, like cv_results['params'])")
    return column


def _cv_metric(results: Mapping[str, Any], metric: str | None, refit: Any = None) -> str:
    """The metric to draw: ``metric``, else the only (or the search's refit) metric."""
    available = sorted(k[len("mean_test_"):] for k in results if k.startswith("mean_test_"))
    if not available:
        raise ValueError("cv_results has no 'mean_test_<metric>' entry; pass a fitted search or its cv_results_")
    if metric is None:
        # Per-neuron columns (skstrf.metrics.make_neuron_scorer) are not candidates by default.
        summaries = [m for m in available if not re.search(r"_neuron_\d+$", m)]
        if isinstance(refit, str) and refit in available:
            return refit
        if len(summaries) == 1:
            return summaries[0]
        raise ValueError(f"cv_results holds several metrics {summaries}; choose one with metric=")
    if metric not in available:
        shown = available if len(available) <= 10 else available[:10] + ["..."]
        raise ValueError(f"metric {metric!r} is not in cv_results; available: {shown}")
    return metric


def plot_cv_results(
    cv_results,
    param: str | None = None,
    *,
    metric: str | None = None,
    show_splits: bool = True,
    figsize: tuple[float, float] | None = None,
):
    """Mean ± standard deviation of the cross-validated score of each candidate of a search.

    Parameters
    ----------
    cv_results : dict, pandas.DataFrame or fitted search
        ``search.cv_results_`` of a :class:`~sklearn.model_selection.GridSearchCV` (or
        any search with the same layout, or a DataFrame of it), or the fitted search
        itself. Only ``params`` and ``mean_test_<metric>`` are required: without
        ``std_test_<metric>`` no error bars are drawn, without ``split<i>_test_<metric>``
        no single folds.
    param : str, default=None
        A searched parameter to put on the x axis (e.g. ``"alpha"``); candidates that
        share all other parameters are joined into one line, labelled by those
        parameters. Numbers spanning two decades or more get a log axis; other values
        are categories. Candidates without this parameter (from another grid of a list
        of grids) are drawn as horizontal levels: the mean dotted, ± std shaded.
        ``None`` draws one horizontal error bar per candidate, labelled by its
        parameters.
    metric : str, default=None
        Which metric of a multi-metric search. By default the only one, or the search's
        ``refit`` metric; per-neuron columns (``cc_norm_neuron_3``, from
        :func:`skstrf.metrics.make_neuron_scorer`) are never chosen by default.
    show_splits : bool, default=True
        Also draw the score of every CV split as a small dot.
    figsize : (float, float), default=None
        Figure size in inches; chosen from the number of candidates by default.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    ax : matplotlib.axes.Axes
        The axes. The best-ranked candidate is drawn with a black outline (and in bold
        when ``param`` is None).
    """
    plt = _pyplot()
    _check_bool(show_splits, "show_splits")
    if param is not None and not isinstance(param, str):
        raise TypeError(f"param must be the name of a searched parameter (str) or None; got {param!r}")
    results, candidates = _cv_table(cv_results)
    metric = _cv_metric(results, metric, getattr(cv_results, "refit", None))
    n = len(candidates)
    mean = _cv_column(results, f"mean_test_{metric}", n)
    if np.isnan(mean).all():
        raise ValueError(f"every candidate's mean_test_{metric} is NaN (did every fit fail? see the "
                         "search's error_score); there is no score to draw")
    # A minimal table (params and mean_test_<metric>, e.g. written by hand) is drawn with
    # what it has: no error bars without std_test_, no dots without split<i>_test_.
    std = _cv_column(results, f"std_test_{metric}", n) if f"std_test_{metric}" in results else None
    rank_key = f"rank_test_{metric}"
    rank = _cv_column(results, rank_key, n) if rank_key in results else np.argsort(np.argsort(-mean)) + 1
    split_keys = sorted((k for k in results if re.fullmatch(rf"split\d+_test_{re.escape(metric)}", str(k))),
                        key=lambda k: int(k[len("split"):].split("_")[0]))
    splits = np.array([_cv_column(results, k, n) for k in split_keys]).reshape(len(split_keys), n)
    names = sorted({k for p in candidates for k in p})
    short = _short_names(names)
    summary = "mean \u00b1 std" if std is not None else "mean"
    folds = f" over {len(split_keys)} folds" if split_keys else ""
    score_label = f"{'test score' if metric == 'score' else metric} ({summary}{folds})"
    best = int(np.argmin(rank))

    if param is None:
        if figsize is None:
            figsize = (8, 1.2 + 0.35 * n)
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        pos = np.arange(n)[::-1]  # first candidate on top
        if show_splits and splits.size:
            ax.plot(splits.T.ravel(), np.repeat(pos, splits.shape[0]), ls="none", marker=".", color="0.6",
                    ms=4, label="single folds")
        ax.errorbar(mean, pos, xerr=std, fmt="o", color="C0", capsize=3, label=summary)
        ax.plot(mean[best], pos[best], marker="o", ms=9, mfc="none", mec="black", ls="none", label="best (rank 1)")
        ax.set_yticks(pos)
        ax.set_yticklabels([_describe(p, short) for p in candidates], fontsize=8)
        ax.get_yticklabels()[best].set_fontweight("bold")
        ax.set_xlabel(score_label)
        ax.set_ylim(-0.7, n - 0.3)
        ax.legend(fontsize=8, loc="best")
        return fig, ax

    key = next((k for k in names if k == param or short[k] == param), None)
    if key is None:
        raise ValueError(f"param {param!r} was not searched; searched parameters: {names}")
    having = np.array([i for i, p in enumerate(candidates) if key in p])
    values = [candidates[i][key] for i in having]
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
    x = np.full(len(candidates), np.nan)
    if numeric:
        x[having] = np.asarray(values, dtype=float)
        positive = x[having][x[having] > 0]
        log = positive.size == having.size and positive.max() >= 100 * positive.min()
    else:
        categories = list(dict.fromkeys(_format_value(v) for v in values))
        x[having] = [categories.index(_format_value(v)) for v in values]
        log = False
    groups: dict[str, list[int]] = {}
    for i in having:
        rest = {k: v for k, v in candidates[i].items() if k != key}
        groups.setdefault(_describe(rest, short), []).append(i)
    if figsize is None:
        figsize = (7.5, 4)
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    # Groups are shifted sideways a little so that their error bars do not hide each other.
    where = np.log10(x) if log else x
    distinct = np.unique(where[having])
    gap = np.diff(distinct).min() if distinct.size > 1 else 1.0
    if log:
        gap = min(gap, 0.5)  # never more than a few hundredths of a decade per group
    spread = 0.6 if not numeric else 0.25  # a numeric axis keeps its values readable
    width = min(spread / 2, spread / len(groups)) * gap if len(groups) > 1 else 0.0
    for g, (label, index) in enumerate(groups.items()):
        index = np.asarray(index)
        order = index[np.argsort(x[index], kind="stable")]
        xs = where[order] + (g - (len(groups) - 1) / 2) * width
        xs = 10.0**xs if log else xs
        color = f"C{g}"
        if show_splits and splits.size:
            ax.plot(np.repeat(xs, splits.shape[0]), splits[:, order].T.ravel(), ls="none", marker=".",
                    color=color, alpha=0.35, ms=4)
        # Lines join numeric values only: categories have no order to interpolate along.
        ax.errorbar(xs, mean[order], yerr=None if std is None else std[order], fmt="-o" if numeric else "o",
                    color=color, capsize=3, lw=1.2, label=label or summary)
        if best in order:
            j = int(np.flatnonzero(order == best)[0])
            ax.plot(xs[j], mean[best], marker="o", ms=11, mfc="none", mec="black", ls="none")
    # Candidates without the parameter (another branch of a list of grids) do not vary
    # along the axis: each is a level, its mean dotted and its spread shaded.
    for g, i in enumerate(sorted(set(range(len(candidates))) - set(having.tolist())), start=len(groups)):
        color = f"C{g}"
        best_note = ", best" if i == best else ""
        ax.axhline(mean[i], color=color, ls=":", lw=1.5,
                   label=f"{_describe(candidates[i], short)} (no {short[key]}{best_note})")
        if std is not None:
            ax.axhspan(mean[i] - std[i], mean[i] + std[i], color=color, alpha=0.1, lw=0)
    if log:
        ax.set_xscale("log")
    if numeric and distinct.size <= 12:
        # Ticks on the searched values themselves: no 1.2 for an integer parameter.
        from matplotlib.ticker import NullLocator

        ticks = 10.0**distinct if log else distinct
        ax.set_xticks(ticks, [_format_value(v) for v in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
    if not numeric:
        ax.set_xticks(range(len(categories)))
        ax.set_xticklabels(categories)
    ax.set(xlabel=short[key], ylabel=score_label, title=f"Cross-validated score by {short[key]} (\u25cb best candidate)")
    if len(groups) > 1 or having.size < len(candidates) or next(iter(groups)):
        ax.legend(fontsize=8)
    return fig, ax


# ------------------------------------------------------------------- variance partition
_PARTITION = ("the output of skstrf.inspection.partition_variance (a Bunch with space_names, unique, "
              "shared and total)")


def _partition_arrays(result) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, str]:
    """The space names, unique (n_spaces, n_neurons), shared and total (n_neurons,) parts and
    the normalisation of a partition, each checked and named in errors."""
    if not isinstance(result, Mapping) or not {"space_names", "unique", "shared", "total"} <= set(result):
        missing = (sorted({"space_names", "unique", "shared", "total"} - set(result))
                   if isinstance(result, Mapping) else None)
        extra = f" (it has no {', '.join(missing)})" if missing else ""
        raise TypeError(f"result must be {_PARTITION}; got {_kind(result)}{extra}")
    names = result["space_names"]
    _check_names(names, "result.space_names", "one name per feature space")
    if names is None or not all(isinstance(n, str) for n in names):
        raise TypeError(f"result.space_names must be a list of str, one per feature space; got {names!r:.60}")
    expected = "parts of the explained variance, NaN where undefined"
    unique = _real_array(result["unique"], "result.unique", expected, allow_bool=False)
    shared = _real_array(result["shared"], "result.shared", expected, allow_bool=False)
    total = _real_array(result["total"], "result.total", expected, allow_bool=False)
    if unique.ndim != 2 or unique.shape[0] != len(names):
        raise ValueError(f"result.unique must have shape (n_spaces, n_neurons) = ({len(names)}, n_neurons), "
                         f"one row per name of result.space_names; got shape {unique.shape}")
    for value, name in ((shared, "result.shared"), (total, "result.total")):
        if value.shape != unique.shape[1:]:
            raise ValueError(f"{name} must have shape (n_neurons,) = ({unique.shape[1]},), as result.unique's "
                             f"columns; got shape {value.shape}")
    for value, name in ((unique, "result.unique"), (shared, "result.shared"), (total, "result.total")):
        if np.isinf(value).any():
            raise ValueError(f"{name} has infinite values; expected finite parts, NaN where undefined")
    if unique.shape[1] == 0:
        raise ValueError("result holds no neuron; there is nothing to draw")
    normalization = result.get("normalization", "signal_power")
    return list(names), unique, shared, total, normalization


def _stacked_bars(ax, x, parts: np.ndarray, colors, labels, width: float) -> None:
    """Bars of the rows of ``parts`` (n_parts, n_bars) at ``x``, positive parts stacked up from
    0 and negative ones down from 0 (a stack of mixed signs would hide parts behind others)."""
    up = np.zeros(parts.shape[1])
    down = np.zeros(parts.shape[1])
    for row, color, label in zip(parts, colors, labels):
        bottom = np.where(row >= 0, up, down)
        ax.bar(x, row, width=width, bottom=bottom, color=color, label=label, edgecolor="white", linewidth=0.3)
        up = np.where(row >= 0, up + row, up)
        down = np.where(row < 0, down + row, down)


def plot_variance_partition(
    result,
    ax=None,
    *,
    sort: bool = True,
    summary: bool = True,
    title: str | None = "Explained variance: unique and shared parts",
    figsize: tuple[float, float] | None = None,
):
    """Stacked bars of each neuron's explained variance: the unique part of every feature
    space, and the shared part, from :func:`skstrf.inspection.partition_variance`.

    Each bar is a neuron (numbered by its index in y), stacked from the unique part of each
    space (one colour per space) and the part they share (grey); a black dot marks the
    total, the held-out share explained by the model with every space. Positive parts stack
    up from 0 and negative ones (estimation noise: a space that makes held-out predictions
    slightly worse) down from 0, so that the dot is where the bar's parts add up to. A last
    bar, apart, is the mean over neurons; the legend gives each part's mean.

    Parameters
    ----------
    result : Bunch
        The output of :func:`skstrf.inspection.partition_variance` (``space_names``,
        ``unique`` of shape (n_spaces, n_neurons), ``shared`` and ``total`` of shape
        (n_neurons,), and ``normalization``). Neurons whose total is NaN (excluded as
        unreliable, or without signal power) are left out, and counted in the axis label.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure by default.
    sort : bool, default=True
        Neurons in decreasing order of their total; False keeps y's order.
    summary : bool, default=True
        Add the bar of the mean over neurons.
    title : str or None, default="Explained variance: unique and shared parts"
        Axes title.
    figsize : (float, float), default=None
        Figure size in inches when ``ax`` is None; chosen from the number of neurons by
        default.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    ax : matplotlib.axes.Axes
        The bar axes.

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.plotting import plot_variance_partition
    >>> result = {"space_names": ["spectrogram", "onsets"],
    ...           "unique": np.array([[0.30, 0.10, 0.22], [0.05, 0.12, 0.01]]),
    ...           "shared": np.array([0.10, 0.05, 0.08]), "total": np.array([0.45, 0.27, 0.31])}
    >>> fig, ax = plot_variance_partition(result)
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['0', '2', '1', 'mean']
    """
    names, unique, shared, total, normalization = _partition_arrays(result)
    _check_bool(sort, "sort")
    _check_bool(summary, "summary")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None; got {_kind(title)}")
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None; got {_kind(ax)}")
    kept = np.flatnonzero(~np.isnan(total))
    if kept.size == 0:
        raise ValueError("every neuron's total is NaN (unreliable or without signal power): there is no "
                         "partition to draw")
    if sort:
        kept = kept[np.argsort(-total[kept], kind="stable")]
    parts = np.vstack([unique, shared[None]])[:, kept]
    parts = np.nan_to_num(parts)  # a part NaN where the total is not: nothing to stack
    n = kept.size
    plt = _pyplot()
    if ax is None:
        if figsize is None:
            figsize = (min(5.0 + 0.28 * (n + 2), 18), 4)
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    else:
        fig = ax.figure
    colors = [f"C{i}" for i in range(len(names))] + ["0.65"]
    means = np.nanmean(np.vstack([unique, shared[None]])[:, kept], axis=1)
    mean_total = float(np.mean(total[kept]))
    def rounded(value: float) -> str:  # no "-0.000"
        return f"{0.0 if abs(value) < 5e-4 else value:.3f}"

    labels = [f"{name}, unique (mean {rounded(m)})" for name, m in zip(names, means[:-1])]
    labels.append(f"shared (mean {rounded(means[-1])})")
    x = np.arange(n, dtype=float)
    _stacked_bars(ax, x, parts, colors, labels, width=0.8)
    ax.plot(x, total[kept], ls="none", marker="o", ms=4, color="black", label=f"total (mean {rounded(mean_total)})")
    ticks, ticklabels = list(x), [str(i) for i in kept]
    if summary:
        where = n + 0.8
        ax.axvline(n - 0.1, color="0.5", lw=0.8, ls=":")
        _stacked_bars(ax, np.array([where]), means[:, None], colors, [None] * len(colors), width=0.8)
        ax.plot([where], [mean_total], ls="none", marker="o", ms=5, color="black")
        ticks.append(where)
        ticklabels.append("mean")
    if n > 40:  # one label per neuron would be unreadable: every k-th
        step = int(np.ceil(n / 40))
        keep = [i for i in range(len(ticks)) if i % step == 0 or ticklabels[i] == "mean"]
        ticks, ticklabels = [ticks[i] for i in keep], [ticklabels[i] for i in keep]
    ax.set_xticks(ticks, ticklabels, fontsize=8 if n > 20 else 9)
    ax.axhline(0.0, color="black", lw=0.8)
    left_out = total.size - n
    order = "sorted by total" if sort else "in y's order"
    xlabel = f"neuron ({order}" + (f"; {left_out} with a NaN total left out)" if left_out else ")")
    denominator = "explainable (signal) variance" if normalization == "signal_power" else "PSTH variance"
    ax.set(xlabel=xlabel, ylabel=f"share of the {denominator}")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig, ax
