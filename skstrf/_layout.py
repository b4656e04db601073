"""Layouts of the data contract: y's axes read against X's, predictions back to the user's
layout, what one continuous recording is, and how a recording is cut into blocks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DataShape", "responses_layout", "to_user_layout", "is_one_recording", "block_edges"]


@dataclass(frozen=True)
class DataShape:
    """The shape of a fit's data in the stimulus layout, and the valid length of each stimulus.

    What planning a fit reads from the data: no values. Data in memory and data in dask
    chunks both give one.

    Attributes
    ----------
    lengths : ndarray of int of shape (n_stimuli,)
        Valid (unpadded) frames of each stimulus.
    n_times, n_freqs, n_neurons, n_repeats : int
    x_ndim : int
        Dimensions of the X given (2: one continuous recording).
    y_layout : {"neuron", "psth", "repeats"}
        The layout of the y given.
    """

    lengths: np.ndarray
    n_times: int
    n_freqs: int
    n_neurons: int
    n_repeats: int
    x_ndim: int
    y_layout: str

    @property
    def n_stimuli(self) -> int:
        return int(self.lengths.size)

# y.ndim - X.ndim -> how y's trailing axes are read
_Y_LAYOUTS = {-1: "neuron", 0: "psth", 1: "repeats"}


def responses_layout(y, x_ndim: int):
    """Read y's layout from its dimensions relative to X's and bring it to the stimulus layout.

    This is the one place where the data contract's rule is applied: ``y.ndim - x_ndim`` is
    -1 (one neuron), 0 (a PSTH per neuron) or +1 (a repeats axis last).

    Parameters
    ----------
    y : ndarray (or an array with numpy's indexing, e.g. a dask array)
        Responses.
    x_ndim : int
        Number of dimensions of the matching X (2: one recording, 3: stimuli).

    Returns
    -------
    y : array of shape (n_stimuli, n_times, n_neurons, n_repeats)
        A view of the input (``n_repeats`` and ``n_neurons`` are 1 where y had no such axis).
    layout : {"neuron", "psth", "repeats"}
    """
    offset = y.ndim - x_ndim
    if x_ndim not in (2, 3) or offset not in _Y_LAYOUTS:
        expected = ", ".join(str(x_ndim + k) for k in sorted(_Y_LAYOUTS))
        axes = "stimuli, frames" if x_ndim == 3 else "frames"
        raise ValueError(
            f"y has {y.ndim} dimension(s) but X has {x_ndim}; expected {expected} "
            f"(X's {axes}, then optionally neurons, then optionally repeats)."
        )
    layout = _Y_LAYOUTS[offset]
    y4 = y[None] if x_ndim == 2 else y
    if layout == "neuron":
        y4 = y4[..., None, None]
    elif layout == "psth":
        y4 = y4[..., None]
    return y4, layout


def to_user_layout(a, x_ndim: int, y_layout: str | None = None):
    """Bring an array in the stimulus layout back to the layout the user gave.

    Parameters
    ----------
    a : array of shape (n_stimuli, n_times, ...)
        Predictions (n_stimuli, n_times, n_neurons), or transformed stimuli.
    x_ndim : int
        Dimensions of the X the user gave: 2 (one recording) drops the stimulus axis.
    y_layout : {"neuron", "psth", "repeats"} or None, default=None
        The layout of the user's y: "neuron" (no neuron axis) drops the last axis; None
        leaves it (stimuli, not responses).

    Returns
    -------
    array
        A view of ``a``.
    """
    if x_ndim == 2:
        a = a[0]
    if y_layout == "neuron":
        a = a[..., 0]
    return a


def is_one_recording(x_shape: tuple[int, ...]) -> bool:
    """Whether X of shape ``x_shape`` is one continuous recording.

    One recording is a single stimulus, given as 2-D X ``(n_times, n_freqs)`` or as 3-D X
    with one stimulus: there are no stimuli to split, so everything that holds data out
    (cross-validation, the validation split, fixed splits) cuts it into contiguous blocks
    of frames (:func:`block_edges`) instead.
    """
    return len(x_shape) == 2 or (len(x_shape) == 3 and x_shape[0] == 1)


def block_edges(lengths, n_blocks: int) -> np.ndarray:
    """Where each of ``n_blocks`` contiguous blocks of a stimulus starts and ends.

    The one rule for cutting a recording (or each stimulus) into blocks: as
    :class:`sklearn.model_selection.KFold` sizes its folds, the first ``length % n_blocks``
    blocks get one frame more than the others (6 frames in 4 blocks: 2, 2, 1, 1).

    Parameters
    ----------
    lengths : int or array-like of int of shape (n_stimuli,)
        Valid frames of each stimulus.
    n_blocks : int
        Blocks per stimulus, at least 1. A stimulus shorter than ``n_blocks`` frames has
        empty blocks at its end (a splitter refuses that case before it comes here).

    Returns
    -------
    edges : ndarray of int of shape (n_blocks + 1,) or (n_stimuli, n_blocks + 1)
        Block ``b`` of stimulus ``s`` holds frames ``edges[s, b] .. edges[s, b + 1] - 1``;
        1-D for a scalar ``lengths``.

    Examples
    --------
    >>> from skstrf._layout import block_edges
    >>> block_edges(6, 4)
    array([0, 2, 4, 5, 6])
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n_blocks = int(n_blocks)
    if n_blocks < 1:
        raise ValueError(f"n_blocks must be at least 1; got {n_blocks}")
    size, extra = np.divmod(lengths[..., None], n_blocks)
    sizes = size + (np.arange(n_blocks) < extra)
    zero = np.zeros(lengths.shape + (1,), dtype=np.int64)
    return np.concatenate([zero, np.cumsum(sizes, axis=-1)], axis=-1)
