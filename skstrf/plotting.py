"""Matplotlib figures of fitted STRFs, training histories and score distributions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["plot_strfs", "plot_history", "plot_score_hist"]


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def plot_strfs(
    strfs,
    *,
    titles: Sequence[str] | None = None,
    dt_ms: float | None = 5.0,
    freqs: Sequence[float] | None = None,
    shared_clim: bool = True,
    ncols: int | None = None,
    cmap: str = "RdBu_r",
    suptitle: str | None = None,
    figsize: tuple[float, float] | None = None,
    colorbar: bool = True,
):
    """Draw STRFs as (frequency x lag) images on a diverging colour scale centred on 0.

    Parameters
    ----------
    strfs : array-like of shape (n_strfs, n_freqs, n_lags) or sequence of (n_freqs, n_lags)
        Kernels to draw, e.g. ``est.strfs_[[3, 7]]``; lag 0 is the current frame.
    titles : sequence of str, default=None
        One title per panel.
    dt_ms : float or None, default=5.0
        Frame duration: the lag axis is drawn in ms. ``None`` draws lag indices.
    freqs : sequence of float, default=None
        Centre frequency of each band in Hz for the frequency axis labels; by default the
        axis shows band indices.
    shared_clim : bool, default=True
        One colour scale ``[-m, m]`` for all panels (``m`` the largest absolute value), or
        one per panel.
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

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : ndarray of matplotlib.axes.Axes
        Flattened axes, one per STRF (unused grid cells are removed).
    """
    plt = _pyplot()
    kernels = [np.asarray(k, dtype=float) for k in strfs]
    if not kernels:
        raise ValueError("plot_strfs needs at least one STRF")
    shapes = {k.shape for k in kernels}
    if any(k.ndim != 2 for k in kernels) or len(shapes) != 1:
        raise ValueError(
            f"each STRF must be a 2-D (n_freqs, n_lags) array of one common shape; got shapes {sorted(shapes)}"
        )
    if titles is not None and len(titles) != len(kernels):
        raise ValueError(f"got {len(titles)} titles for {len(kernels)} STRFs")
    n_freqs, n_lags = kernels[0].shape
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
    limits = [np.nanmax(np.abs(k)) for k in kernels]
    shared = max(limits)
    lag_extent = (n_lags - 1) * dt_ms if dt_ms is not None else n_lags - 1
    half_lag = 0.5 * (dt_ms if dt_ms is not None else 1)
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
            extent=(-half_lag, lag_extent + half_lag, -0.5, n_freqs - 0.5),
            interpolation="nearest",
        )
        images.append(im)
        ax.set_xlabel("lag (ms)" if dt_ms is not None else "lag (frames)")
        if i % ncols == 0:
            ax.set_ylabel("frequency (kHz)" if freqs is not None else "frequency band")
        if freqs is not None:
            ticks = np.linspace(0, n_freqs - 1, min(n_freqs, 5)).round().astype(int)
            ax.set_yticks(ticks)
            ax.set_yticklabels([f"{freqs[t] / 1000:.1f}" for t in ticks])
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
        if colorbar and not shared_clim:
            fig.colorbar(im, ax=ax, shrink=0.85)
    if colorbar and shared_clim:
        fig.colorbar(images[0], ax=list(axes), shrink=0.85, label="weight")
    if suptitle:
        fig.suptitle(suptitle)
    return fig, np.asarray(axes)


def _history_records(history) -> list[dict]:
    """Per-epoch records of a skorch History, a fitted estimator or a list of dicts."""
    history = getattr(history, "history_", history)
    return [dict(row) for row in history]


def plot_history(histories: Mapping[str, object], *, figsize: tuple[float, float] = (11, 3.8)):
    """Validation loss and validation cc_norm per epoch, several fits overlaid.

    Parameters
    ----------
    histories : mapping of str to History
        Label -> a fitted :class:`~skstrf.STRFRegressor`, its ``history_`` or a list of
        per-epoch dicts with keys ``epoch``, ``train_loss``, ``valid_loss`` and
        ``valid_cc_norm``.
    figsize : (float, float), default=(11, 3.8)
        Figure size in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : ndarray of 2 matplotlib.axes.Axes
        Loss (training dashed, validation solid) and validation cc_norm.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    for i, (label, history) in enumerate(histories.items()):
        records = _history_records(history)
        color = f"C{i}"
        epochs = [r["epoch"] for r in records]
        if all("train_loss" in r for r in records):
            axes[0].plot(epochs, [r["train_loss"] for r in records], color=color, ls="--", lw=1,
                         label=f"{label} (train)")
        if all("valid_loss" in r for r in records):
            axes[0].plot(epochs, [r["valid_loss"] for r in records], color=color, lw=1.5,
                         label=f"{label} (valid)")
        if all("valid_cc_norm" in r for r in records):
            axes[1].plot(epochs, [r["valid_cc_norm"] for r in records], color=color, lw=1.5,
                         label=label)
    axes[0].set(xlabel="epoch", ylabel="MSE (units of PSTH variance)", title="Loss")
    axes[1].set(xlabel="epoch", ylabel="validation cc_norm", title="Validation cc_norm")
    for ax in axes:
        if ax.lines:
            ax.legend(fontsize=8)
    return fig, axes


def plot_score_hist(
    scores: Mapping[str, np.ndarray],
    *,
    bins=None,
    xlabel: str = "test cc_norm",
    title: str | None = "Per-cell test cc_norm",
    figsize: tuple[float, float] = (8, 3.8),
):
    """Overlaid histograms of per-cell scores of several models.

    Parameters
    ----------
    scores : mapping of str to array-like of shape (n_neurons,)
        Label -> per-neuron score (NaN entries are left out and counted in the legend).
    bins : int or array-like, default=None
        Histogram bins; by default 35 bins over [min(-0.2, lowest), max(1.0, highest)].
    xlabel, title : str
        Axis label and title.
    figsize : (float, float), default=(8, 3.8)
        Figure size in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
    ax : matplotlib.axes.Axes
    """
    plt = _pyplot()
    values = {k: np.asarray(v, dtype=float).ravel() for k, v in scores.items()}
    finite = [v[np.isfinite(v)] for v in values.values()]
    if bins is None:
        lo = min([-0.2] + [v.min() for v in finite if v.size])
        hi = max([1.0] + [v.max() for v in finite if v.size])
        bins = np.linspace(lo, hi, 35)
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    for label, v in values.items():
        ok = np.isfinite(v)
        extra = f", {np.count_nonzero(~ok)} NaN" if (~ok).any() else ""
        ax.hist(v[ok], bins=bins, alpha=0.45, edgecolor="black", linewidth=0.5,
                label=f"{label} (mean {np.mean(v[ok]) if ok.any() else np.nan:.3f}{extra})")
    ax.set(xlabel=xlabel, ylabel="# neurons")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return fig, ax
