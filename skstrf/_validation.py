"""Input validation for the skstrf data contract (stimuli, responses, NaN end-padding)."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array

from ._layout import DataShape, responses_layout
from ._moments import FrameMoments, group_median, is_flat, stimulus_blocks
from ._warnings import user_stacklevel, warn_once_per_line

if TYPE_CHECKING:  # torch is imported where a check needs it: reading the data stays light
    import torch

__all__ = ["StimulusSet", "check_stimuli", "check_responses", "check_X_y", "check_variation",
           "check_non_negative", "check_signed_for_positive_output", "validation_split", "masked_moments", "check_stimuli_shape",
           "check_responses_shape", "check_dtype", "tensor_to_read", "feature_names",
           "check_feature_names"]



@dataclass(frozen=True)
class StimulusSet:
    """Validated data in the canonical stimulus layout.

    Attributes
    ----------
    X : ndarray of shape (n_stimuli, n_times, n_freqs)
        Stimuli as float64, NaN on end-padding frames.
    lengths : ndarray of shape (n_stimuli,)
        Number of valid (unpadded) frames of each stimulus.
    x_ndim : int
        Number of dimensions of the X the user passed (2 or 3).
    y : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats) or None
        Responses as float64 or float32 (as given: never copied), NaN on padding frames and
        on missing repeats.
    y_layout : {"neuron", "psth", "repeats"} or None
        How the user's y was laid out: one neuron without a neuron axis, a PSTH
        without a repeats axis, or with a repeats axis.
    starts : ndarray of int of shape (n_stimuli,) or None
        The first frame of each stimulus whose response is fitted and scored: the frames
        before it are a lead-in, read as history only (:mod:`skstrf._history`). None: 0.
    """

    X: np.ndarray
    lengths: np.ndarray
    x_ndim: int
    y: np.ndarray | None = None
    y_layout: str | None = None
    starts: np.ndarray | None = None

    @property
    def first_scored(self) -> np.ndarray:
        """The first fitted and scored frame of each stimulus, shape (n_stimuli,)."""
        return np.zeros(self.X.shape[0], dtype=np.int64) if self.starts is None else self.starts

    @property
    def scored_mask(self) -> np.ndarray:
        """Boolean array of shape (n_stimuli, n_times): the valid frames past the lead-in,
        whose responses are fitted and scored."""
        frames = np.arange(self.X.shape[1])[None, :]
        return (frames < self.lengths[:, None]) & (frames >= self.first_scored[:, None])

    def with_lead_in(self, lead_in: int) -> "StimulusSet":
        """These stimuli with their first ``lead_in`` frames as a lead-in (a view)."""
        if lead_in == 0 and self.starts is None:
            return self
        out = StimulusSet(self.X, self.lengths, self.x_ndim, self.y, self.y_layout,
                          np.full(self.n_stimuli, int(lead_in), dtype=np.int64))
        if "_psth" in self.__dict__:
            out.__dict__["_psth"] = self.__dict__["_psth"]
        return out

    def scored(self, a: np.ndarray) -> np.ndarray:
        """``a`` (n_stimuli, n_times, ...) with NaN on the lead-in frames (a copy only when
        there is a lead-in): responses as they are fitted and scored."""
        if self.starts is None or not self.starts.any():
            return a
        out = np.array(a, dtype=np.float64, copy=True)
        out[np.arange(a.shape[1])[None, :] < self.starts[:, None]] = np.nan
        return out

    @property
    def n_stimuli(self) -> int:
        return self.X.shape[0]

    @property
    def frame_mask(self) -> np.ndarray:
        """Boolean array of shape (n_stimuli, n_times), True on valid frames."""
        return np.arange(self.X.shape[1])[None, :] < self.lengths[:, None]

    def psth(self) -> np.ndarray:
        """PSTH of shape (n_stimuli, n_times, n_neurons): mean over valid repeats.

        Computed once per StimulusSet (a fit needs it several times) and shared between
        calls: treat it as read-only.
        """
        if self.y is None:
            raise ValueError("this StimulusSet has no responses")
        cached = self.__dict__.get("_psth")
        if cached is not None:
            return cached
        if self.y.shape[-1] == 1:
            # One repeat is its own mean (NaN where missing): a view, no full-size temporaries.
            psth = self.y[..., 0]
        else:
            # The data contract makes a repeat present on all valid frames of a stimulus or on
            # none (check_responses), so its first frame says which repeats count: one masked
            # sum over y, no full-size temporaries. Padding frames stay NaN.
            present = np.isfinite(self.y[:, 0])  # (S, N, R)
            counts = present.sum(axis=-1)
            total = np.sum(self.y, axis=-1, where=present[:, None], dtype=np.float64)
            psth = total / np.where(counts > 0, counts, np.nan)[:, None]
        # the dataclass is frozen; the cache is not a field, so it bypasses __setattr__
        self.__dict__["_psth"] = psth
        return psth

    @property
    def shape(self) -> DataShape:
        """The data's :class:`~skstrf._layout.DataShape` (what planning a fit reads)."""
        S, T, F = self.X.shape
        N, R = (1, 1) if self.y is None else self.y.shape[2:]
        return DataShape(self.lengths, T, F, N, R, self.x_ndim, self.y_layout)

    def cut(self, at: int, context: int = 0) -> "StimulusSet":
        """One recording as two stimuli: its frames before ``at``, then the rest (NaN-padded).

        The second starts ``context`` frames early (at most ``at``), as a lead-in: its first
        scored frame still sees the recording's real preceding frames as history.
        """
        length = int(self.lengths[0])
        early = min(int(context), at)
        n_times = max(at, length - at + early)

        def halves(a: np.ndarray) -> np.ndarray:
            out = np.full((2, n_times, *a.shape[2:]), np.nan)
            out[0, :at] = a[0, :at]
            out[1, :length - at + early] = a[0, at - early:length]
            return out

        y = None if self.y is None else halves(self.y)
        starts = np.array([int(self.first_scored[0]), early], dtype=np.int64)
        return StimulusSet(halves(self.X), np.array([at, length - at + early]), self.x_ndim, y, self.y_layout,
                           starts)

    def subset(self, index: np.ndarray) -> "StimulusSet":
        """Return the stimuli selected by ``index`` (axis 0), trimmed to their longest length.

        A contiguous run of stimuli (the usual train / validation split) is a view of this
        set's arrays, not a copy.
        """
        index = np.asarray(index)
        if (index.ndim == 1 and index.size and np.issubdtype(index.dtype, np.integer)
                and index[0] >= 0 and np.array_equal(index, np.arange(index[0], index[0] + index.size))):
            index = slice(int(index[0]), int(index[0]) + index.size)
        lengths = self.lengths[index]
        n_times = int(lengths.max())
        y = None if self.y is None else self.y[index, :n_times]
        starts = None if self.starts is None else self.starts[index]
        subset = StimulusSet(self.X[index, :n_times], lengths, self.x_ndim, y, self.y_layout, starts)
        psth = self.__dict__.get("_psth")
        if psth is not None:  # the subset's PSTH is part of this set's: not computed again
            subset.__dict__["_psth"] = psth[index, :n_times]
        return subset


_RAGGED_HINT = (
    "stimuli of different lengths must be NaN-padded at the end (whole frames) into one "
    "array of shape (n_stimuli, n_times, n_freqs), and y likewise"
)

# Training computes squared errors in float32; beyond this magnitude they overflow.
MAX_ABS_VALUE = float(np.sqrt(np.finfo(np.float32).max))


def _as_float_array(a, name: str, allow_nd: bool, keep_float32: bool = False) -> np.ndarray:
    """Convert to a float64 ndarray (float32 kept as it is with ``keep_float32``: no copy),
    rejecting sparse, complex and non-numeric input.

    Numbers in an object array are converted (as scikit-learn does); text, dates and other
    objects are errors rather than being cast, so nothing non-numeric becomes a number.
    """
    if a is None:
        raise ValueError(f"{name} is None; expected an array of numbers.")
    if isinstance(a, np.ma.MaskedArray):
        n_masked = int(np.ma.count_masked(a))
        if n_masked:
            raise ValueError(
                f"{name} is a numpy masked array with {n_masked} masked value(s), and skstrf does "
                "not read masks (their values would be used as data). Mark missing data as the "
                f"contract does, e.g. {name}.filled(np.nan) for whole end-padding frames."
            )
        a = a.data
    if type(a).__module__.startswith("torch") and hasattr(a, "detach"):
        # a tensor that requires grad refuses numpy(); the data are what is meant
        a = a.detach().cpu().numpy()
    if not sp.issparse(a):  # check_array names the argument in its own sparse error
        try:
            a = np.asarray(a)
        except ValueError as exc:  # numpy refuses ragged nested sequences
            raise ValueError(f"{name} is a ragged sequence that is not one array ({exc}); "
                             f"{_RAGGED_HINT}.") from exc
        check_dtype(a, name)
    try:
        return check_array(
            a,
            accept_sparse=False,
            dtype=(np.float64, np.float32) if keep_float32 else np.float64,
            ensure_all_finite=False,
            ensure_2d=False,
            allow_nd=allow_nd,
            ensure_min_samples=0,  # empty axes get the message of check_stimuli
            input_name=name,
        )
    except (TypeError, ValueError) as exc:
        if getattr(a, "dtype", None) != object:
            raise
        raise _non_number_error(a, name, exc) from exc


def check_dtype(a: np.ndarray, name: str) -> None:
    """Reject 0-d arrays and dtypes that are not real numbers (object arrays are checked later).

    Reads ``a.ndim`` and ``a.dtype`` only, so it also checks arrays that are not in memory
    (e.g. a dask array's ``_meta``).
    """
    if a.ndim == 0:
        raise ValueError(f"{name} is a scalar ({a!r}); expected an array of numbers.")
    kind = a.dtype.kind
    if kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {a.dtype}; expected real numbers "
            "(e.g. the magnitude or power of a complex spectrogram)."
        )
    if kind in "SU":
        raise ValueError(
            f"{name} holds text (dtype {a.dtype}); expected numbers. Convert it first, e.g. "
            f"{name}.astype(float), if the text holds numbers."
        )
    if kind not in "biufO":
        raise TypeError(f"{name} has dtype {a.dtype}, which is not numeric; expected real numbers.")


def _non_number_error(a: np.ndarray, name: str, exc: Exception) -> Exception:
    """Error naming the first element of object array ``a`` that is not a number."""
    for index, value in np.ndenumerate(a):
        if value is None or isinstance(value, (numbers.Real, np.bool_)):
            continue
        where = f"{name}[{', '.join(map(str, index))}]"
        if isinstance(value, (np.ndarray, list, tuple)):
            return ValueError(f"{name} is an object array holding sequences (e.g. {where}), "
                              f"not one array of numbers; {_RAGGED_HINT}.")
        if isinstance(value, (str, bytes)):
            return ValueError(f"{name} holds text ({where} = {value!r}); expected numbers.")
        if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values, not NaN
            return ValueError(
                f"{name} holds pandas' missing value {value!r} at {where}; skstrf marks padding and "
                f"missing repeats with NaN (np.nan), a number: convert first, e.g. "
                f"{name}.astype(float) or DataFrame.to_numpy(dtype=float, na_value=np.nan).")
        # keeps numpy's wording ("float() argument must be a string or a real number")
        return TypeError(f"{name} holds a {type(value).__name__} at {where}, which is not a "
                         f"number: {exc}")
    return exc


def _end_padding_lengths(X: np.ndarray) -> np.ndarray:
    """Valid length of each stimulus of ``X`` (S, T, F), checking NaN is only whole end frames."""
    if np.isinf(X).any():
        s, t, f = np.argwhere(np.isinf(X))[0]
        raise ValueError(
            f"X contains infinite values (first at stimulus {s}, frame {t}, band {f}); "
            "only NaN end-padding is allowed."
        )
    nan = np.isnan(X)
    frame_nan = nan.all(axis=2)
    partial = nan.any(axis=2) & ~frame_nan
    if partial.any():
        s, t = np.argwhere(partial)[0]
        raise ValueError(
            f"X has NaN in some but not all frequency bands of stimulus {s}, frame {t}; "
            "NaN is only allowed as end-padding of whole frames."
        )
    n_times = X.shape[1]
    # The first padded frame of each stimulus; every later frame must be padded too.
    lengths = np.where(frame_nan.any(axis=1), frame_nan.argmax(axis=1), n_times)
    after = np.arange(n_times)[None, :] >= lengths[:, None]
    gap = ~frame_nan & after
    if gap.any():
        s, t = np.argwhere(gap)[0]
        first = lengths[s]
        raise ValueError(
            f"X has NaN frames inside stimulus {s} (frame {first} is NaN but frame {t} is not); "
            "NaN is only allowed as end-padding, after the last valid frame."
        )
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise ValueError(
            f"stimulus {empty[0]} of X has no valid frames (all NaN); "
            "remove empty stimuli before fitting."
        )
    return lengths.astype(np.int64)


def check_stimuli(X, *, n_freqs: int | None = None, owner: str = "this estimator") -> StimulusSet:
    """Validate stimuli and bring them to the stimulus layout.

    Parameters
    ----------
    X : array-like of shape (n_times, n_freqs) or (n_stimuli, n_times, n_freqs)
        One continuous recording, or a set of stimuli NaN-padded at the end.
    n_freqs : int, default=None
        Expected number of frequency bands (the number seen in ``fit``).
    owner : str, default="this estimator"
        Name of the fitted estimator, for the error when the number of bands differs
        (worded as scikit-learn words it).

    Returns
    -------
    data : StimulusSet
        The stimuli as float64 of shape (n_stimuli, n_times, n_freqs) with their lengths.
    """
    X = _as_float_array(X, "X", allow_nd=True)
    check_stimuli_shape(X.shape, n_freqs=n_freqs, owner=owner)
    x_ndim = X.ndim
    X3 = X[None] if X.ndim == 2 else X
    lengths = _end_padding_lengths(X3)
    _check_magnitude(X3, "X")
    return StimulusSet(X3, lengths, x_ndim)


def feature_names(X) -> np.ndarray | None:
    """The band names of a table of stimuli (a 2-D pandas ``DataFrame``, frames by bands):
    its column names when they are all strings, as scikit-learn records them; else None.

    Returns
    -------
    ndarray of object or None

    Raises
    ------
    TypeError
        When the column names mix strings with other types (as scikit-learn does).
    """
    columns = getattr(X, "columns", None)
    ndim = getattr(X, "ndim", None)
    # an int ndim: lazy objects (a dask Delayed) answer every attribute with another one
    if columns is None or not isinstance(ndim, int) or ndim != 2:
        return None
    names = np.asarray(list(columns), dtype=object)
    kinds = sorted({type(n).__name__ for n in names})
    if len(kinds) > 1 and "str" in kinds:
        raise TypeError(
            f"X's column names mix strings with other types ({kinds}): band names must all be "
            "strings (X.columns = X.columns.astype(str)) or none of them."
        )
    return names if kinds == ["str"] else None


def check_feature_names(X, fitted: np.ndarray | None, owner: str = "this estimator") -> None:
    """Raise if the band names of ``X`` differ from those seen in ``fit`` (``fitted``); warn
    when only one of the two has names, as scikit-learn's estimators do.

    Parameters
    ----------
    X : array-like
        Stimuli given to ``predict`` or ``score``.
    fitted : ndarray of object or None
        :func:`feature_names` of the stimuli ``fit`` saw (``feature_names_in_``).
    owner : str, default="this estimator"
        Named in the messages.
    """
    names = feature_names(X)
    if fitted is None and names is None:
        return
    if fitted is None or names is None:
        warnings.warn(f"X {'has' if fitted is None else 'does not have'} band names (DataFrame "
                      f"columns), but {owner} was fitted {'without' if fitted is None else 'with'} "
                      "them: the bands are taken in the order given.", UserWarning, stacklevel=user_stacklevel())
        return
    if names.shape == fitted.shape and (names == fitted).all():
        return
    # the messages of scikit-learn's own estimators (its estimator checks match them)
    unseen = sorted(set(names) - set(fitted))
    missing = sorted(set(fitted) - set(names))

    def listed(found: list) -> str:
        return "".join(f"- {n}\n" for n in found[:5]) + ("- ...\n" if len(found) > 5 else "")

    message = "The feature names should match those that were passed during fit.\n"
    if unseen:
        message += "Feature names unseen at fit time:\n" + listed(unseen)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + listed(missing)
    if not unseen and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message + f"(X's DataFrame columns are the band names {owner} was fitted "
                     "with: select and order them as in fit, e.g. X[est.feature_names_in_].)")


def check_stimuli_shape(shape: tuple[int, ...], *, n_freqs: int | None = None,
                        owner: str = "this estimator") -> None:
    """The checks of :func:`check_stimuli` that read X's shape only (its dimensions, no
    empty axis, the number of bands); also used on arrays that are not in memory."""
    ndim = len(shape)
    if ndim not in (2, 3):
        # scikit-learn's wording for 1-D input, which its users (and estimator checks) know.
        hint = (" Reshape your data either using X.reshape(-1, 1) if it is one frequency "
                "band over time, or X.reshape(1, -1) if it is a single frame.") if ndim == 1 else ""
        raise ValueError(
            f"X has {ndim} dimension(s) with shape {shape}; expected 2 "
            f"(n_times, n_freqs) or 3 (n_stimuli, n_times, n_freqs).{hint}"
        )
    if min(shape) == 0:
        raise ValueError(
            f"X has shape {shape} with an empty axis; expected at least one stimulus, "
            "one frame and one frequency band."
        )
    if n_freqs is not None and shape[-1] != n_freqs:
        raise ValueError(
            f"X has {shape[-1]} features, but {owner} is expecting {n_freqs} features as "
            f"input (frequency bands, the last axis of X: it was fitted with {n_freqs})."
        )


def check_responses(y, stimuli: StimulusSet) -> StimulusSet:
    """Validate responses against validated stimuli.

    Parameters
    ----------
    y : array-like
        Responses in one of the layouts of the data contract: ``y.ndim - X.ndim`` is -1
        (one neuron), 0 (a PSTH per neuron) or +1 (a repeats axis last).
    stimuli : StimulusSet
        The output of :func:`check_stimuli` for the matching X.

    Returns
    -------
    data : StimulusSet
        ``stimuli`` with ``y`` of shape (n_stimuli, n_times, n_neurons, n_repeats).
    """
    if y is None:
        raise ValueError("y is required: this estimator needs responses to fit.")
    y = _as_float_array(y, "y", allow_nd=True, keep_float32=True)  # y is the largest array: never copied
    y4, layout = responses_layout(y, stimuli.x_ndim)
    check_responses_shape(y.shape, y4.shape, stimuli.X.shape, stimuli.x_ndim)
    psth = _read_responses(y4, stimuli.lengths, layout)  # one pass: the checks and the PSTH
    data = StimulusSet(stimuli.X, stimuli.lengths, stimuli.x_ndim, y4, layout, stimuli.starts)
    data.__dict__["_psth"] = psth  # computed along the way (StimulusSet.psth's mean, in float64)
    return data


def check_responses_shape(y_shape: tuple[int, ...], y4_shape: tuple[int, ...], X3_shape: tuple[int, ...],
                          x_ndim: int) -> None:
    """The checks of :func:`check_responses` that read shapes only: y (``y_shape``, and
    ``y4_shape`` in the stimulus layout) against X (``X3_shape`` in the stimulus layout,
    ``x_ndim`` as given)."""
    lead_y, lead_x = tuple(y4_shape[:2]), tuple(X3_shape[:2])
    if lead_y != lead_x:
        names = ("stimuli", "frames")
        k = 0 if lead_y[0] != lead_x[0] else 1
        raise ValueError(
            f"X and y disagree on the number of {names[k]}: X has {lead_x[k]} and y has "
            f"{lead_y[k]} (X shape {tuple(X3_shape) if x_ndim == 3 else tuple(X3_shape[1:])}, "
            f"y shape {tuple(y_shape)})."
        )
    if min(y4_shape[2:]) == 0:
        raise ValueError(f"y has shape {tuple(y_shape)} with an empty neuron or repeat axis.")


def _check_magnitude(a: np.ndarray, name: str) -> None:
    """Reject finite values too large for the float32 arithmetic of training and prediction."""
    # nanmax/nanmin reduce without allocating an |a| copy of a possibly large y
    _check_peak(max(float(np.nanmax(a)), -float(np.nanmin(a))), name)


def _check_peak(peak: float, name: str) -> None:
    """Reject a largest finite magnitude ``peak`` of ``name`` beyond float32's arithmetic."""
    if peak > MAX_ABS_VALUE:
        raise ValueError(
            f"{name} has values up to {peak:.3g} in magnitude; expected at most "
            f"{MAX_ABS_VALUE:.3g}, beyond which squared errors overflow the float32 arithmetic "
            f"of the model. Rescale {name} (e.g. express a power spectrogram in dB)."
        )


def _read_responses(y: np.ndarray, lengths: np.ndarray, layout: str) -> np.ndarray:
    """One pass over y, a block of stimuli at a time: every check of the data contract on
    the responses, and the PSTH.

    Each block is read where it lies (any dtype, memory order or stride; read-only arrays
    and reversed views are copied a block at a time, never whole), summed over repeats in
    float64 on torch's threads: where every sum of a valid frame is finite (all repeats
    recorded, nothing infinite), that sum is the PSTH and the block's only other reads are
    its padding (which must be NaN) and its extremes. A block with NaN or infinite values
    on valid frames is read once more to count them per repeat: the errors are those of
    the whole array, in this order: infinite values, values on X's padding, repeats NaN on
    some but not all valid frames, neurons without a repeat of a stimulus, magnitudes beyond
    float32's arithmetic. Missing repeats (NaN over a whole stimulus) are left out of the
    PSTH's mean.

    Returns
    -------
    psth : ndarray of shape (n_stimuli, n_times, n_neurons)
        float64, NaN on padding frames (a view of y for a single repeat).
    """
    import torch

    n_stimuli, n_times, n_neurons, n_repeats = y.shape
    single = n_repeats == 1
    psth = y[..., 0] if single else np.empty(y.shape[:3])
    frames = np.arange(n_times)
    infinite, pad_finite, peak = False, None, 0.0
    n_valid_nan = np.zeros((n_stimuli, n_neurons, n_repeats), dtype=np.int64)
    for block in stimulus_blocks(y):
        values = y[block]
        if any(step < 0 for step in values.strides):  # torch reads no reversed view
            values = np.ascontiguousarray(values)
        part = tensor_to_read(values)
        valid = frames[None, :] < lengths[block, None]  # (s, T)
        valid_t = torch.from_numpy(valid)
        # the PSTH's block written in place (the mean over repeats) over the valid frames, and
        # the block's largest magnitude (or a bound of it) where every value there is finite
        _, block_peak = _sum_repeats(part, None if single else torch.from_numpy(psth[block]), n_repeats,
                                     lengths[block])
        fast = bool(np.isfinite(block_peak))  # NaN or inf on a valid frame: counted below
        if not fast:
            # NaN (missing repeats, or errors) or inf on valid frames: count per repeat
            infinite = infinite or bool(torch.isinf(part).any())
            nan = torch.isnan(part)
            n_valid_nan[block] = (nan & valid_t[:, :, None, None]).sum(1).numpy()
            present = torch.from_numpy(n_valid_nan[block] == 0)  # (s, N, R)
            total = torch.nansum(torch.where(present[:, None], part, float("nan")), dim=-1, dtype=torch.float64)
            count = present.sum(-1).double()  # (s, N)
            total = total / torch.where(count > 0, count, float("nan"))[:, None]
            if not single:
                psth[block] = total.numpy()
        if not valid.all():  # padding frames must be all NaN
            padding = part[torch.from_numpy(~valid)]
            if pad_finite is None and not bool(torch.isnan(padding).all()):
                s, t = np.argwhere(~valid & ~np.isnan(values).all(axis=(2, 3)))[0]
                pad_finite = (int(s) + block.start, int(t))
        if fast:
            # every value of a valid frame is finite, the padding is NaN or an error: the
            # block's largest magnitude is its valid frames', found by the sum's own pass
            peak = max(peak, block_peak)
        else:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                # nanmax/nanmin read without an |y| copy; an all-NaN block (missing repeats
                # only) gives NaN and its "All-NaN slice" warning, not a peak
                warnings.simplefilter("ignore", RuntimeWarning)
                high, low = np.nanmax(values), np.nanmin(values)
            if not np.isnan(high):
                peak = max(peak, float(high), -float(low))
    if infinite:
        raise ValueError("y contains infinite values; only NaN padding and NaN repeats are allowed.")
    _check_response_nans(n_valid_nan, lengths, layout, pad_finite)
    _check_peak(peak, "y")
    if not single:
        psth[~(frames[None, :] < lengths[:, None])] = np.nan
    return psth


#: Bytes of float64 values that :func:`_sum_repeats` sums at a time: a chunk of frames small
#: enough to stay in a core's cache between its sum and its sign test, large enough that the
#: per-call cost of the reductions is small (NS1's 119 neurons x 20 repeats: 110 frames of
#: one stimulus).
SUM_CHUNK_BYTES = 2**21


def _sum_repeats(part: "torch.Tensor", out: "torch.Tensor | None" = None, divisor: int = 1,
                 lengths: np.ndarray | None = None) -> tuple["torch.Tensor", float]:
    """The sum over the last axis (repeats) of ``part`` in float64 divided by ``divisor``
    over each stimulus's valid frames, and the largest magnitude there (or a bound of it),
    from one read of ``part``, a chunk of frames of one stimulus at a time.

    Each chunk is summed as a matrix-vector product, rows (frame, neuron) by a vector of
    ones in float64: torch's reduction over a short last axis (``torch.sum(...,
    dtype=torch.float64)``) is bound by its per-row cost, about twice as slow here. A chunk
    of float32 values, or of a strided or Fortran-ordered ``part``, is first converted into
    one contiguous float64 buffer (a new one per chunk costs its page faults), so that every
    layout and float dtype of the same values gives the same sums to the last bit. The
    chunk is then read once more, while in cache, for its smallest value: a chunk with no
    negative value (spike counts) has its largest magnitude bounded by its largest sum over
    repeats, free from the sums; a chunk with a negative value takes its exact extremes.
    Nothing is returned per frame: every reduction is over a whole chunk, as each call costs
    about as much as reading a few thousand values.

    Parameters
    ----------
    part : Tensor of shape (n_stimuli, n_times, n_neurons, n_repeats)
        Any float dtype and strides.
    out : Tensor of shape (n_stimuli, n_times, n_neurons), float64, default=None
        C-contiguous memory to write the result into (e.g. the PSTH's); a new tensor by
        default. Its frames beyond each stimulus's length are not written.
    divisor : int, default=1
        The sums are divided by it (the number of repeats: the mean).
    lengths : ndarray of int of shape (n_stimuli,), default=None
        Valid frames of each stimulus (the first ones); None: all.

    Returns
    -------
    sums : Tensor of shape (n_stimuli, n_times, n_neurons), float64
        ``out`` when given. NaN and inf propagate.
    peak : float
        The largest magnitude of the valid values, or an upper bound of it (the largest sum
        over repeats) where a chunk holds no negative value, unless that bound exceeds
        :data:`MAX_ABS_VALUE`: what the magnitude check needs. NaN when a valid value is
        NaN; inf when one is infinite or a sum overflows.
    """
    import torch

    out = torch.empty(part.shape[:-1], dtype=torch.float64) if out is None else out
    n_stimuli, n_times, n_neurons, n_repeats = part.shape
    lengths = np.full(n_stimuli, n_times) if lengths is None else np.asarray(lengths)
    step = max(1, min(n_times, SUM_CHUNK_BYTES // max(1, 8 * n_neurons * n_repeats)))
    if not out.is_contiguous():
        raise ValueError("_sum_repeats writes its sums into C-contiguous memory")
    ones = torch.ones(n_repeats, dtype=torch.float64)
    buffer = None  # float64 copies of the chunks that are not already contiguous float64
    peak = 0.0
    for stimulus in range(n_stimuli):  # chunks of one stimulus: contiguous in a C-ordered part
        for start in range(0, int(lengths[stimulus]), step):
            frames = slice(start, min(start + step, int(lengths[stimulus])))
            chunk = part[stimulus, frames]
            if chunk.dtype != torch.float64 or not chunk.is_contiguous():
                if buffer is None:
                    buffer = torch.empty((step, n_neurons, n_repeats), dtype=torch.float64)
                chunk = buffer[:chunk.shape[0]].copy_(chunk)
            sums = out[stimulus, frames]  # contiguous: whole frames of one stimulus of out
            torch.mv(chunk.view(-1, n_repeats), ones, out=sums.view(-1))
            low = float(chunk.amin())  # NaN where a value is NaN
            if np.isnan(low):
                return out, float("nan")  # the caller counts the NaN values
            high = float(sums.amax()) if low >= 0 else np.inf
            if not high <= MAX_ABS_VALUE:
                # a negative value (no bound from the sums), a bound beyond the check's limit,
                # or a sum that overflowed: the exact extremes
                high = max(float(chunk.amax()), -low)
            peak = max(peak, high)
            if divisor != 1:
                sums.div_(divisor)
    return out, peak


def tensor_to_read(a: np.ndarray) -> "torch.Tensor":
    """``a`` as a CPU tensor to be read only, sharing its memory.

    An array the user made read-only (a read-only memmap, say) is shared too: torch warns
    that a tensor could write to it, and skstrf never writes to what it reads this way, so
    that warning is silenced here. Only a reversed view (negative strides), which torch
    cannot describe, is copied.

    Parameters
    ----------
    a : ndarray

    Returns
    -------
    Tensor
    """
    import torch

    if any(step < 0 for step in a.strides):
        a = np.ascontiguousarray(a)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def _check_response_nans(n_valid_nan: np.ndarray, lengths: np.ndarray, layout: str,
                         pad_finite: tuple[int, int] | None) -> None:
    """Check y's NaNs are X's end-padding plus whole missing repeats, from the number of NaN
    valid frames of each (stimulus, neuron, repeat) and the first finite padding frame."""
    if pad_finite is not None:
        s, t = pad_finite
        raise ValueError(
            f"y has values at stimulus {s}, frame {t}, but X is NaN-padded there (stimulus {s} "
            f"has {lengths[s]} valid frames in X); X and y must share the same end-padding."
        )
    # Within valid frames a repeat is either fully present or fully missing (NaN).
    partial = (n_valid_nan > 0) & (n_valid_nan < lengths[:, None, None])
    if partial.any():
        s, n, r = np.argwhere(partial)[0]
        what = {
            "repeats": f"repeat {r} of neuron {n}",
            "psth": f"neuron {n}",
            "neuron": "the response",
        }[layout]
        raise ValueError(
            f"y has NaN inside stimulus {s} ({what} is NaN on some but not all of its "
            f"{lengths[s]} valid frames); NaN is only allowed as end-padding shared with X, "
            "or over a whole missing repeat."
        )
    missing = n_valid_nan == lengths[:, None, None]  # (S, N, R): repeat missing
    no_repeat = missing.all(axis=2)  # (S, N)
    if no_repeat.any():
        s, n = np.argwhere(no_repeat)[0]
        if no_repeat[:, n].all():
            raise ValueError(f"neuron {n} has no valid response at all (y is all NaN for it).")
        misses = np.flatnonzero(no_repeat[:, n])
        affected = np.flatnonzero(no_repeat.any(axis=0))

        def listed(values: np.ndarray) -> str:
            return f"{values[:5].tolist()}{' ...' if values.size > 5 else ''}"

        raise ValueError(
            f"neuron {n} has no valid repeat for stimulus {s} (all NaN); every neuron needs "
            "at least one recorded repeat of every stimulus it is fitted on (the neurons "
            f"share one design). Neuron {n} misses {misses.size} "
            f"{'stimulus' if misses.size == 1 else 'stimuli'} ({listed(misses)}), as a unit lost "
            f"partway through a session does; {affected.size} "
            f"{'neuron misses' if affected.size == 1 else 'neurons miss'} some ({listed(affected)}): "
            "fit each apart, on the stimuli it was recorded for, and the other neurons without them."
        )


def validation_split(lengths: np.ndarray, fraction: float | None
                     ) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Hold out the last ``fraction`` of the stimuli (or of one recording's frames) for validation.

    At least one stimulus is held out and at least one is kept for training. One continuous
    recording (a single stimulus) is split in time instead: its last ``fraction`` of frames
    (at least ``2`` and leaving at least ``2``) become a second, validation stimulus
    (:meth:`StimulusSet.cut`).

    Parameters
    ----------
    lengths : ndarray of int of shape (n_stimuli,)
        Valid frames of each stimulus.
    fraction : float or None
        None holds nothing out.

    Returns
    -------
    train, valid : ndarray of int
        Indices of the training and validation stimuli (after the cut, if any).
    cut : int or None
        For one recording: the frame where the training block ends, None when nothing is cut.
    """
    n_stimuli = lengths.size
    if fraction is None:
        return np.arange(n_stimuli), np.arange(0), None
    if n_stimuli == 1:
        length = int(lengths[0])
        n_valid = int(round(fraction * length))
        if n_valid < 2 or length - n_valid < 2:
            warnings.warn(
                f"the recording has {length} frames, too few to hold out "
                f"validation_fraction={fraction} of them as a validation block: training for "
                "max_epochs without early stopping. Pass validation_fraction=None to silence this.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            return np.arange(1), np.arange(0), None
        return np.arange(1), np.arange(1, 2), length - n_valid
    n_valid = min(max(1, int(round(fraction * n_stimuli))), n_stimuli - 1)
    return np.arange(n_stimuli - n_valid), np.arange(n_stimuli - n_valid, n_stimuli), None


def masked_moments(a: np.ndarray, mask: np.ndarray, *, relative_floor: float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``a`` over the valid frames, per entry of its last axis.

    A constant entry gets scale 1, so that it stays constant instead of dividing by zero.

    Parameters
    ----------
    a : ndarray of shape (n_stimuli, n_times, n_entries)
    mask : ndarray of bool of shape (n_stimuli, n_times)
        True on valid frames.
    relative_floor : float, default=0.0
        Raise every scale to at least this fraction of the median scale of the entries that
        vary, so that dividing by the scale never amplifies a nearly silent entry (a band
        at a spectrogram's log floor) to the level of the others.

    Returns
    -------
    mean, scale : ndarray of shape (n_entries,)
    """
    return FrameMoments.of(a, mask).standardisation(relative_floor)


#: A band whose standard deviation is below this fraction of the median band's is reported
#: as nearly constant (e.g. a log spectrogram's floor).
NEAR_CONSTANT_RATIO = 1e-3


def check_variation(moments: "tuple[FrameMoments, FrameMoments]", space_of_band: np.ndarray | None = None) -> None:
    """Reject training data with nothing to fit; warn about constant bands and neurons.

    A constant band or neuron is legal (a dead channel, a silent unit among many) and the
    others are still fitted, so it gets a warning; when every band or every neuron is
    constant an STRF has nothing to explain, which is an error. A band is nearly constant
    next to the median band of its own feature space (spaces may be in different units).

    Parameters
    ----------
    moments : (FrameMoments, FrameMoments)
        Of X and of the PSTH over the training frames.
    space_of_band : ndarray of int of shape (n_freqs,) or None, default=None
        The feature space of each band; None: one space.
    """
    x_moments, y_moments = moments
    flat_x = is_flat(x_moments.mean, x_moments.std)
    flat_y = is_flat(y_moments.mean, y_moments.std)
    if flat_x.all():
        raise ValueError(
            f"X is constant over the {x_moments.count} training frames in every one of "
            f"its {flat_x.size} frequency band(s) (standard deviation <= 1e-12 * |mean|): "
            "a stimulus that does not vary cannot drive an STRF. Check that X holds the "
            "spectrograms."
        )
    if flat_y.all():
        raise ValueError(
            f"y is constant over the training frames for every one of its {flat_y.size} "
            "neuron(s) (e.g. all zero): there is no response for an STRF to explain. Check the "
            "responses (units, binning, the selection of neurons)."
        )
    if flat_x.any():
        warn_once_per_line(UserWarning(
            f"X is constant over the training frames in frequency band(s) "
            f"{np.flatnonzero(flat_x).tolist()}: they carry no stimulus information, and their "
            "STRF weights are not tuning (with history='zero' they see only stimulus onsets, "
            "the step from zero to the band's level; gradient training leaves their lag-0 weight "
            "where it started)."
        ))
    std = np.asarray(x_moments.std)
    space = np.zeros(std.shape, dtype=np.int64) if space_of_band is None else np.asarray(space_of_band)
    quiet = (std < NEAR_CONSTANT_RATIO * group_median(std, space)) & ~flat_x
    if quiet.any():
        warn_once_per_line(UserWarning(
            f"X's frequency band(s) {np.flatnonzero(quiet).tolist()} are nearly constant over the "
            f"training frames: their standard deviation is below {NEAR_CONSTANT_RATIO:g} times "
            "the median band's of their feature space (e.g. a log spectrogram's floor, where a band "
            "holds only rounding noise). They are kept; the model's standardisation does not amplify "
            "them above the median band of their space, but consider removing them (e.g. "
            "sklearn.feature_selection.VarianceThreshold through skstrf.preprocessing."
            "FrameTransformer)."
        ))
    if flat_y.any():
        warn_once_per_line(UserWarning(
            f"y is constant over the training frames for neuron(s) "
            f"{np.flatnonzero(flat_y).tolist()} (zero variance): there is no response for their "
            "STRF to explain, and cc / cc_norm are undefined (NaN) for a constant response."
        ))


def check_signed_for_positive_output(data: StimulusSet, nonlinearity: str) -> None:
    """Warn when a positive-only output (``nonlinearity``) is fitted to a PSTH that goes
    below zero (centred or baseline-subtracted responses): the model cannot reach those
    values, and the fit is distorted to approach them."""
    psth = data.psth()
    low = float(np.nanmin(psth, initial=np.inf, where=data.scored_mask[..., None]))
    if low < 0:
        share = float(np.mean(psth[data.scored_mask] < 0))
        warn_once_per_line(UserWarning(
            f"nonlinearity={nonlinearity!r} predicts positive rates only, but the PSTH goes below "
            f"zero ({share:.1%} of its values, down to {low:.3g}): the model cannot reach those "
            "responses. Give y as spike counts or rates (not centred or baseline-subtracted), or "
            "use nonlinearity='identity'."
        ))


def check_non_negative(y: np.ndarray) -> None:
    """Raise if responses ``y`` (S, T, N, R) have a negative value (Poisson loss)."""
    negative = y < 0  # NaN compares False
    if negative.any():
        s, t, n, r = np.argwhere(negative)[0]
        raise ValueError(
            f"loss='poisson' needs non-negative responses (spike counts or rates), but y has "
            f"{int(negative.sum())} negative value(s), the first {y[s, t, n, r]:g} at stimulus "
            f"{s}, frame {t}, neuron {n}, repeat {r}; use loss='mse' for signed responses."
        )


def check_X_y(X, y) -> StimulusSet:
    """Validate X and y together (see :func:`check_stimuli` and :func:`check_responses`)."""
    return check_responses(y, check_stimuli(X))
