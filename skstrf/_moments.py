"""Moments of data that arrive a part at a time: counts, means and centred sums of squares
and products, merged exactly (Chan, Golub & LeVeque 1983)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["merge_means", "FrameMoments", "is_flat", "group_median", "stimulus_blocks", "BLOCK_BYTES"]


def merge_means(count_a, mean_a, count_b, mean_b):
    """The pooled count and mean of two sets, and what their centred sums need.

    Chan, Golub & LeVeque's pairwise update, the one place it is written: for any two
    variables ``x`` and ``y`` (or ``x`` with itself) the centred sum of products of the
    union is ``m_a + m_b + delta_x * delta_y * cross``.

    Parameters
    ----------
    count_a, count_b : int or ndarray
        Number of elements of each set (zero allowed).
    mean_a, mean_b : ndarray
        Their means, broadcastable against the counts.

    Returns
    -------
    count : int or ndarray
    mean : ndarray
    delta : ndarray
        ``mean_b - mean_a``.
    cross : float or ndarray
        ``count_a * count_b / count`` (0 where ``count`` is 0).
    """
    count = count_a + count_b
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(count > 0, np.divide(count_b, count), 0.0)
        cross = np.where(count > 0, np.divide(np.multiply(count_a, count_b, dtype=np.float64), count), 0.0)
    delta = mean_b - mean_a
    return count, mean_a + delta * share, delta, cross


def is_flat(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """True where a standard deviation is numerically zero next to its mean (rounding only).

    Relative to the mean alone, so that the test does not depend on the data's units: a
    band or a neuron in SI units (values of 1e-12, say) varies as much as in any other unit.
    A band that is nearly silent next to the others gets :func:`check_variation`'s
    warning about nearly constant bands instead.
    """
    return ~(std > 1e-12 * np.abs(mean))


@dataclass(frozen=True)
class FrameMoments:
    """Number of valid frames, mean and centred sum of squares of each entry over them.

    The moments of a set of stimuli from those of its parts (:meth:`merge`), so that data
    that arrive in chunks (see :mod:`skstrf._chunked`) are standardised exactly as the
    whole would be.

    Attributes
    ----------
    count : int
        Number of valid frames.
    mean : ndarray of shape (n_entries,)
    m2 : ndarray of shape (n_entries,)
        Sum over the valid frames of the squared deviations from ``mean``.
    """

    count: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def of(cls, a: np.ndarray, mask: np.ndarray) -> "FrameMoments":
        """Moments of ``a`` (n_stimuli, n_times, n_entries) over the frames where ``mask``
        (n_stimuli, n_times) is True.

        Masked reductions over blocks of stimuli: the temporaries are one block's size
        (about :data:`BLOCK_BYTES`), never a copy of ``a``.
        """
        mask = np.asarray(mask, dtype=bool)
        count = int(mask.sum())
        where = mask[..., None]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.sum(a, axis=(0, 1), where=where, dtype=np.float64) / count
            m2 = np.zeros(a.shape[2:], dtype=np.float64)
            for block in stimulus_blocks(a):
                deviation = np.subtract(a[block], mean, dtype=np.float64)
                np.multiply(deviation, deviation, out=deviation)
                m2 += np.sum(deviation, axis=(0, 1), where=where[block])
        return cls(count, mean, m2)

    def merge(self, other: "FrameMoments") -> "FrameMoments":
        """Moments of the union of both sets of frames (:func:`merge_means`)."""
        if self.count == 0 or other.count == 0:
            return self if other.count == 0 else other
        count, mean, delta, cross = merge_means(self.count, self.mean, other.count, other.mean)
        return FrameMoments(int(count), mean, self.m2 + other.m2 + delta**2 * cross)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation of each entry (ddof=0)."""
        return np.sqrt(self.m2 / self.count)

    def standardisation(self, relative_floor: float = 0.0, groups: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and scale of each entry: its standard deviation, 1 where it is flat.

        Parameters
        ----------
        relative_floor : float, default=0.0
            Raise each scale to at least this fraction of the median scale of the entries
            of its group that vary (:func:`is_flat`); 0: no floor.
        groups : ndarray of int of shape (n_entries,) or None, default=None
            The group of each entry, e.g. the feature space of each band: entries are
            compared only within their group (a group whose entries are all flat has no
            floor). None: one group.

        Returns
        -------
        mean, scale : ndarray of shape (n_entries,)
        """
        scale = self.std
        flat = is_flat(self.mean, scale)
        if relative_floor > 0:
            groups = np.zeros(scale.shape, dtype=np.int64) if groups is None else np.asarray(groups)
            if groups.shape != scale.shape:
                raise ValueError(f"groups must give the group of each of the {scale.size} entries; "
                                 f"got shape {groups.shape}")
            scale = np.maximum(scale, relative_floor * group_median(scale, groups, ~flat))
        return self.mean, np.where(flat, 1.0, scale)


#: Bytes of data that a blockwise pass over an array (:func:`stimulus_blocks`) reads at a time.
BLOCK_BYTES = 32 * 2**20


def group_median(values: np.ndarray, groups: np.ndarray, counted: np.ndarray | None = None) -> np.ndarray:
    """For each entry, the median of ``values`` over the counted entries of its group (0
    where its group has none counted): "the typical band of its feature space".

    Parameters
    ----------
    values : ndarray of shape (n_entries,)
    groups : ndarray of int of shape (n_entries,)
    counted : ndarray of bool of shape (n_entries,) or None, default=None
        Entries that take part in their group's median; None: all.
    """
    counted = np.ones(values.shape, dtype=bool) if counted is None else counted
    out = np.zeros_like(values, dtype=np.float64)
    for group in np.unique(groups[counted]):  # a few groups (feature spaces), not entries
        members = groups == group
        out[members] = np.median(values[members & counted])
    return out


def stimulus_blocks(a: np.ndarray) -> list[slice]:
    """Slices of whole stimuli (axis 0) of ``a`` of about :data:`BLOCK_BYTES` each."""
    per_stimulus = max(1, a[:1].nbytes)
    step = max(1, BLOCK_BYTES // per_stimulus)
    return [slice(i, i + step) for i in range(0, a.shape[0], step)]
