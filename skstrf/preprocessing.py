"""Spectrogram preprocessing for pipelines: frame-wise transformers that keep NaN end-padding.

Every transformer here checks its output: its NaN frames are exactly the end-padding of its
input (after rebinning, the incomplete bins), so that a value it cannot compute is an error
naming it, and is never taken for padding by the estimator after it.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, clone
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._layout import to_user_layout
from ._validation import StimulusSet, check_feature_names, check_responses, check_stimuli, feature_names

__all__ = ["FrameTransformer", "Compression", "BandPooling", "TimeRebinner", "FeatureSpaces",
           "rebin_time"]

_REDUCERS = ("mean", "sum", "max")
# The spaces FeatureSpaces can make; all but "envelope" have one band per input band.
_SPACES = ("spectrogram", "onsets", "offsets", "derivative", "envelope")
_DERIVED = frozenset({"onsets", "offsets", "derivative"})


# --------------------------------------------------------------------------------------
# Array functions: stimuli (S, T, F) in, stimuli out; NaN padding frames stay NaN.
# --------------------------------------------------------------------------------------
def _apply_to_frames(transform, X: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Apply ``transform`` to the valid frames of ``X`` and put them back in place.

    Parameters
    ----------
    transform : callable
        Maps an array of shape (n_frames, n_freqs) to one of shape (n_frames, n_out).
    X : ndarray of shape (n_stimuli, n_times, n_freqs)
        Stimuli, NaN on padding frames.
    mask : ndarray of shape (n_stimuli, n_times), dtype bool
        True on valid frames.

    Returns
    -------
    Xt : ndarray of shape (n_stimuli, n_times, n_out)
        The transformed frames, NaN on padding frames.
    """
    frames = np.asarray(transform(X[mask]), dtype=np.float64)
    if frames.ndim != 2 or frames.shape[0] != int(mask.sum()):
        raise ValueError(
            f"the wrapped transformer must map (n_frames, n_freqs) to (n_frames, n_out); "
            f"given {int(mask.sum())} frames it returned shape {frames.shape}."
        )
    out = np.full(mask.shape + (frames.shape[1],), np.nan)
    out[mask] = frames
    return out


def _compress(X: np.ndarray, method: str, offset: float, exponent: float) -> np.ndarray:
    """``log(X + offset)`` or ``X ** exponent``, element-wise (NaN stays NaN)."""
    if method == "log":
        return np.log(X + offset)
    return np.power(X, exponent)


def _band_groups(n_freqs: int, pool_size: int) -> np.ndarray:
    """First band of each group of ``pool_size`` adjacent bands (the last may be smaller)."""
    return np.arange(0, n_freqs, pool_size)


def _pool_bands(X: np.ndarray, starts: np.ndarray, reduce: str) -> np.ndarray:
    """Reduce groups of adjacent bands (last axis) starting at ``starts``.

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_times, n_freqs)
    starts : ndarray of int of shape (n_groups,)
    reduce : {"mean", "sum", "max"}

    Returns
    -------
    pooled : ndarray of shape (n_stimuli, n_times, n_groups)
    """
    if reduce == "max":
        return np.maximum.reduceat(X, starts, axis=-1)
    total = np.add.reduceat(X, starts, axis=-1)
    if reduce == "sum":
        return total
    sizes = np.diff(np.append(starts, X.shape[-1]))
    return total / sizes


def _rebin_frames(a: np.ndarray, factor: int, reduce: str) -> np.ndarray:
    """Reduce ``factor`` consecutive frames (axis 1) into one; a trailing remainder is dropped.

    A bin that holds a NaN frame (padding, or the incomplete bin at the end of a shorter
    stimulus) is NaN, so bins are either made of ``factor`` valid frames or are padding.

    Parameters
    ----------
    a : ndarray of shape (n_stimuli, n_times, ...)
    factor : int
    reduce : {"mean", "sum", "max"}

    Returns
    -------
    rebinned : ndarray of shape (n_stimuli, n_times // factor, ...)
    """
    n_bins = a.shape[1] // factor
    binned = a[:, : n_bins * factor].reshape((a.shape[0], n_bins, factor) + a.shape[2:])
    return getattr(np, reduce)(binned, axis=2)


def _frame_difference(X: np.ndarray, lag: int) -> np.ndarray:
    """``X[:, t] - X[:, t - lag]`` within each stimulus, causal (frames t and t - lag only).

    The first ``lag`` frames of a stimulus have no frame ``lag`` before them in it: they
    are compared with the stimulus's own first frame (as if that frame had lasted forever
    before the stimulus), so the first frame's difference is 0 and nothing depends on
    where zero is in X's units. NaN padding frames (at the end) stay NaN.

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_times, n_freqs)
    lag : int
        At least 1.

    Returns
    -------
    difference : ndarray of shape (n_stimuli, n_times, n_freqs)
    """
    n_times = X.shape[1]
    k = min(lag, n_times)
    previous = np.empty_like(X)
    previous[:, :k] = X[:, :1]
    previous[:, k:] = X[:, : n_times - k]
    return X - previous


def _stack_spaces(X: np.ndarray, spaces: tuple[str, ...], lag: int) -> np.ndarray:
    """The feature spaces ``spaces`` of the stimuli ``X``, side by side along the last axis.

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_times, n_freqs)
        Stimuli, NaN on padding frames.
    spaces : tuple of str
        Names among ``_SPACES``, in output order, each once.
    lag : int
        Lag of the frame difference, in frames.

    Returns
    -------
    Xt : ndarray of shape (n_stimuli, n_times, n_out)
        ``n_freqs`` bands per space, 1 for ``"envelope"``; NaN on padding frames
        (``np.maximum`` keeps NaN).
    """
    difference = _frame_difference(X, lag) if _DERIVED.intersection(spaces) else None
    made = {
        "spectrogram": lambda: X,
        "onsets": lambda: np.maximum(difference, 0.0),
        "offsets": lambda: np.maximum(-difference, 0.0),
        "derivative": lambda: difference,
        "envelope": lambda: X.mean(axis=-1, keepdims=True),
    }
    return np.concatenate([made[name]() for name in spaces], axis=-1)


def _check_spaces(spaces) -> tuple[str, ...]:
    """``spaces`` as a tuple of known, distinct space names, or a ValueError saying why not."""
    example = "e.g. spaces=('spectrogram', 'onsets', 'envelope')"
    if isinstance(spaces, str):
        raise ValueError(
            f"spaces must be a list or tuple of space names, {example}; got the string "
            f"{spaces!r} (for that space alone write ({spaces!r},))."
        )
    try:
        names = tuple(spaces)
    except TypeError:
        raise ValueError(f"spaces must be a list or tuple of space names, {example}; "
                         f"got {spaces!r}.") from None
    if not names:
        raise ValueError(f"spaces is empty: name at least one feature space, {example}.")
    for i, name in enumerate(names):
        if not isinstance(name, str) or name not in _SPACES:
            raise ValueError(
                f"spaces[{i}] is {name!r}, which is not a feature space; expected names "
                f"among {list(_SPACES)}."
            )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(
            f"spaces has {repeated[0]!r} more than once; each space can be made once "
            f"(got {list(names)})."
        )
    return names


def _first_bad_frame(Xt: np.ndarray, valid: np.ndarray) -> tuple[str, int, int] | None:
    """The first frame where ``Xt``'s NaN frames are not exactly the padding ``valid`` leaves.

    Parameters
    ----------
    Xt : ndarray of shape (n_stimuli, n_times, n_out)
        A transformer's output in the stimulus layout.
    valid : ndarray of bool of shape (n_stimuli, n_times)
        True on the frames that must hold values (those made from valid input frames).

    Returns
    -------
    (problem, stimulus, frame) or None
        ``problem`` is "NaN" or "an infinite value" on a valid frame, or "values" on a
        padding frame; None when the output is as it must be.
    """
    finite = np.isfinite(Xt).all(axis=-1)
    wrong = valid & ~finite
    if wrong.any():
        s, t = np.argwhere(wrong)[0]
        problem = "NaN" if np.isnan(Xt[s, t]).any() else "an infinite value"
        return problem, int(s), int(t)
    kept = ~valid & ~np.isnan(Xt).all(axis=-1)
    if kept.any():
        s, t = np.argwhere(kept)[0]
        return "values", int(s), int(t)
    return None


def _check_lengths_after_rebin(lengths: np.ndarray, factor: int) -> None:
    short = np.flatnonzero(lengths < factor)
    if short.size:
        s = short[0]
        raise ValueError(
            f"stimulus {s} has {lengths[s]} valid frames, fewer than factor={factor}: it would "
            "have no complete time bin. Use a smaller factor or remove the stimulus."
        )


def _default_names(n_features: int) -> np.ndarray:
    return np.asarray([f"x{i}" for i in range(n_features)], dtype=object)


# --------------------------------------------------------------------------------------
# Transformers
# --------------------------------------------------------------------------------------
class _StimulusTransformer(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Shared fit/transform plumbing: validation of the stimulus layout and of n_features.

    ``auto_wrap_output_keys=None``: outputs are 2-D or 3-D arrays of frames, which
    scikit-learn's ``set_output`` (pandas containers of samples) cannot represent.
    """

    def _validate(self, X, *, reset: bool) -> StimulusSet:
        data = check_stimuli(X)
        if reset:
            self.n_features_in_ = data.X.shape[2]
        elif data.X.shape[2] != self.n_features_in_:
            raise ValueError(
                f"X has {data.X.shape[2]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (frequency bands, the last axis "
                "of X)."
            )
        return data

    def _checked(self, Xt: np.ndarray, valid: np.ndarray, data: StimulusSet) -> np.ndarray:
        """``Xt`` in the user's layout, once its NaN frames are checked to be its padding.

        Parameters
        ----------
        Xt : ndarray of shape (n_stimuli, n_times, n_out)
            The output, in the stimulus layout.
        valid : ndarray of bool of shape (n_stimuli, n_times)
            The output frames made from valid input frames: they must be finite, the others
            all NaN. The estimator after this step takes whole NaN frames at the end of a
            stimulus for padding, so a NaN made here would silently lose frames.
        data : StimulusSet
            The validated input.

        Returns
        -------
        Xt : ndarray of shape (n_stimuli, n_times, n_out) or (n_times, n_out)

        Raises
        ------
        ValueError
            Naming this transformer and the first wrong stimulus and frame.
        """
        found = _first_bad_frame(Xt, valid)
        if found is not None:
            problem, s, t = found
            where = f"frame {t}" if data.x_ndim == 2 else f"stimulus {s}, frame {t}"
            if problem == "values":  # a padding frame that is not NaN: the transformer's fault
                raise ValueError(f"{self!r} returned values at {where}, a padding frame of its "
                                 "input; padding must stay NaN.")
            why = ("NaN is only allowed as the end-padding of the input: the estimator after "
                   "this step would take NaN frames at the end of a stimulus for padding and "
                   "silently drop them" if problem == "NaN" else "the estimator refuses infinite values")
            raise ValueError(
                f"{self!r} produced {problem} at {where}, a valid frame: "
                f"{self._nan_cause(data, s, t)}. {why}."
            )
        return to_user_layout(Xt, data.x_ndim)

    def _nan_cause(self, data: StimulusSet, s: int, t: int) -> str:
        """What made a non-finite output at valid frame ``t`` of stimulus ``s`` (a hint)."""
        frame = data.X[s, t]
        return f"its input there ranges from {frame.min():g} to {frame.max():g}"

    def fit(self, X, y=None):
        """Check the stimuli and record their number of frequency bands.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Stimuli, NaN-padded at the end.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        self._validate_params()
        self._validate(X, reset=True)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # NaN is accepted as whole end-padding frames only (see STRFRegressor).
        tags.input_tags.allow_nan = False
        return tags


class FrameTransformer(_StimulusTransformer):
    """Apply any scikit-learn transformer to every frame of the stimuli.

    Each valid frame (one row of ``n_freqs`` band values) is a sample for the wrapped
    transformer: ``fit`` fits a clone of it on the frames of the stimuli it is given (in a
    pipeline under cross-validation, the training stimuli only) and ``transform`` maps every
    frame. NaN end-padding frames are left out of the fit and stay NaN. Typical uses:
    ``StandardScaler(with_mean=False)`` to scale each band, ``PCA(n_components=k)`` to
    reduce the bands to ``k`` spectral components. A transformer that subtracts a mean
    (``StandardScaler()``, PCA) moves where zero is, which changes nothing with the
    estimator's default history (each band's training mean) and moves the history with
    ``history="zero"`` (see the user guide, "What precedes a stimulus").

    Parameters
    ----------
    transformer : transformer object
        A scikit-learn transformer taking arrays of shape (n_frames, n_freqs). Its
        parameters are reachable as ``transformer__<param>`` (e.g. in a grid).

    Attributes
    ----------
    transformer_ : transformer object
        The fitted clone of ``transformer``.
    n_features_in_ : int
        Number of frequency bands seen in ``fit``.

    See Also
    --------
    BandPooling : Average groups of adjacent bands.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from skstrf.preprocessing import FrameTransformer
    >>> X = np.random.default_rng(0).random((3, 50, 8))
    >>> X[2, 40:] = np.nan  # a shorter stimulus, NaN-padded at the end
    >>> Xt = FrameTransformer(PCA(n_components=3)).fit_transform(X)
    >>> Xt.shape, bool(np.isnan(Xt[2, 40:]).all())
    ((3, 50, 3), True)
    """

    _parameter_constraints: dict = {"transformer": [HasMethods(["fit", "transform"])]}

    def __init__(self, transformer) -> None:
        self.transformer = transformer

    def fit(self, X, y=None) -> "FrameTransformer":
        """Fit the wrapped transformer on the valid frames of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Stimuli, NaN-padded at the end.
        y : None
            Ignored: frames are not aligned with responses.

        Returns
        -------
        self : FrameTransformer
        """
        self._validate_params()
        data = self._validate(X, reset=True)
        self.transformer_ = clone(self.transformer).fit(data.X[data.frame_mask])
        return self

    def transform(self, X) -> np.ndarray:
        """Transform every valid frame of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Stimuli, NaN-padded at the end.

        Returns
        -------
        Xt : ndarray of shape (n_stimuli, n_times, n_out) or (n_times, n_out)
            The transformed frames (``n_out`` is the wrapped transformer's number of
            outputs), NaN on padding frames.
        """
        check_is_fitted(self, "transformer_")
        data = self._validate(X, reset=False)
        Xt = _apply_to_frames(self.transformer_.transform, data.X, data.frame_mask)
        return self._checked(Xt, data.frame_mask, data)

    def _nan_cause(self, data: StimulusSet, s: int, t: int) -> str:
        frame = data.X[s, t]
        return (f"the wrapped {type(self.transformer_).__name__} was given that frame, with "
                f"values from {frame.min():g} to {frame.max():g} (a logarithm of values <= 0 "
                "does this, for example); make it finite on every valid frame, e.g. with an "
                "offset or a floor")

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Output feature names, as the wrapped transformer names them.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names of the frequency bands; ``None`` uses ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self, "transformer_")
        names = _check_input_features(input_features, self.n_features_in_)
        return np.asarray(self.transformer_.get_feature_names_out(names), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = _get_tags_or_default(self.transformer, "positive_only")
        return tags


class Compression(OneToOneFeatureMixin, _StimulusTransformer):
    """Compress the dynamic range of power or amplitude spectrograms.

    ``"log"``: ``log(X + offset)``; ``"power"``: ``X ** exponent`` (e.g. 1/3, a cube-root
    loudness-like compression). Element-wise, so NaN end-padding stays NaN; the valid
    values must be non-negative.

    Parameters
    ----------
    method : {"log", "power"}, default="log"
        The compressive function.
    offset : float, default=1.0
        Added before the logarithm (``"log"`` only); sets the level below which the
        compression flattens out. Must be positive.
    exponent : float, default=1/3
        Exponent of the power law (``"power"`` only), in (0, 1] to compress.

    Attributes
    ----------
    n_features_in_ : int
        Number of frequency bands seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.preprocessing import Compression
    >>> Compression(method="power", exponent=0.5).fit_transform(np.array([[4.0, 9.0]]))
    array([[2., 3.]])
    """

    _parameter_constraints: dict = {
        "method": [StrOptions({"log", "power"})],
        "offset": [Interval(numbers.Real, 0, None, closed="neither")],
        "exponent": [Interval(numbers.Real, 0, 1, closed="right")],
    }

    def __init__(self, method: str = "log", offset: float = 1.0, exponent: float = 1 / 3) -> None:
        self.method = method
        self.offset = offset
        self.exponent = exponent

    def _validate(self, X, *, reset: bool) -> StimulusSet:
        data = super()._validate(X, reset=reset)
        if np.any(data.X[data.frame_mask] < 0):
            raise ValueError(
                "Negative values in data passed to Compression: it compresses power or "
                "amplitude spectrograms, which are non-negative; got a minimum of "
                f"{np.nanmin(data.X):g}."
            )
        return data

    def transform(self, X) -> np.ndarray:
        """Compress every value of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Non-negative stimuli, NaN-padded at the end.

        Returns
        -------
        Xt : ndarray of the same shape as X
        """
        check_is_fitted(self, "n_features_in_")
        data = self._validate(X, reset=False)
        return self._checked(_compress(data.X, self.method, self.offset, self.exponent),
                             data.frame_mask, data)

    def _nan_cause(self, data: StimulusSet, s: int, t: int) -> str:
        low = data.X[s, t].min()
        if self.method == "log":
            return f"log of values <= -offset = {-self.offset:g} (minimum there {low:g})"
        return f"power {self.exponent:g} of values down to {low:g}"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags


class BandPooling(_StimulusTransformer):
    """Pool groups of ``pool_size`` adjacent frequency bands into one.

    Bands ``0..pool_size-1`` form the first output band, and so on; when ``n_freqs`` is
    not a multiple of ``pool_size`` the last group has the remaining bands. NaN
    end-padding frames stay NaN.

    Parameters
    ----------
    pool_size : int, default=2
        Number of adjacent bands per group.
    reduce : {"mean", "sum", "max"}, default="mean"
        How a group's bands are combined.

    Attributes
    ----------
    n_features_in_ : int
        Number of frequency bands seen in ``fit``.
    n_features_out_ : int
        Number of output bands, ``ceil(n_features_in_ / pool_size)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.preprocessing import BandPooling
    >>> BandPooling(pool_size=2).fit_transform(np.array([[1.0, 3.0, 5.0, 7.0, 9.0]]))
    array([[2., 6., 9.]])
    """

    _parameter_constraints: dict = {
        "pool_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "reduce": [StrOptions(set(_REDUCERS))],
    }

    def __init__(self, pool_size: int = 2, reduce: str = "mean") -> None:
        self.pool_size = pool_size
        self.reduce = reduce

    def fit(self, X, y=None) -> "BandPooling":
        """Check the stimuli and record the band groups.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Stimuli, NaN-padded at the end.
        y : None
            Ignored.

        Returns
        -------
        self : BandPooling
        """
        super().fit(X)
        self.n_features_out_ = _band_groups(self.n_features_in_, self.pool_size).size
        return self

    def transform(self, X) -> np.ndarray:
        """Pool the bands of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Stimuli, NaN-padded at the end.

        Returns
        -------
        Xt : ndarray of shape (n_stimuli, n_times, ``n_features_out_``) or \
                (n_times, ``n_features_out_``)
        """
        check_is_fitted(self, "n_features_out_")
        data = self._validate(X, reset=False)
        starts = _band_groups(self.n_features_in_, self.pool_size)
        return self._checked(_pool_bands(data.X, starts, self.reduce), data.frame_mask, data)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Output band names: ``"<first>..<last>"`` of each group (the name alone for one).

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names of the input bands; ``None`` uses ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects of shape (``n_features_out_``,)
        """
        check_is_fitted(self, "n_features_out_")
        names = _check_input_features(input_features, self.n_features_in_)
        starts = _band_groups(self.n_features_in_, self.pool_size)
        stops = np.append(starts[1:], self.n_features_in_) - 1
        return np.asarray([names[a] if a == b else f"{names[a]}..{names[b]}"
                           for a, b in zip(starts, stops)], dtype=object)


class TimeRebinner(OneToOneFeatureMixin, _StimulusTransformer):
    """Rebin the stimuli in time: ``factor`` consecutive frames become one.

    A transformer changes X only. Use it in a pipeline when the spectrogram has a finer
    time step than the responses (e.g. 1 ms frames, responses binned at 5 ms: ``factor=5``
    brings X to y's frames). To rebin stimuli *and* responses together, call
    :func:`rebin_time` on the data before fitting instead.

    Each stimulus keeps ``n_valid // factor`` frames: an incomplete bin at the end of a
    stimulus is dropped (it becomes padding), so every output frame averages exactly
    ``factor`` input frames.

    Parameters
    ----------
    factor : int, default=2
        Number of input frames per output frame.
    reduce : {"mean", "sum", "max"}, default="mean"
        How the frames of a bin are combined.

    Attributes
    ----------
    n_features_in_ : int
        Number of frequency bands seen in ``fit``.

    See Also
    --------
    rebin_time : Rebin X and y together.

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.preprocessing import TimeRebinner
    >>> X = np.arange(10.0).reshape(5, 2)
    >>> TimeRebinner(factor=2).fit_transform(X)
    array([[1., 2.],
           [5., 6.]])
    """

    _parameter_constraints: dict = {
        "factor": [Interval(numbers.Integral, 1, None, closed="left")],
        "reduce": [StrOptions(set(_REDUCERS))],
    }

    def __init__(self, factor: int = 2, reduce: str = "mean") -> None:
        self.factor = factor
        self.reduce = reduce

    def transform(self, X) -> np.ndarray:
        """Rebin ``X`` in time.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Stimuli, NaN-padded at the end.

        Returns
        -------
        Xt : ndarray of shape (n_stimuli, n_times // factor, n_freqs) or \
                (n_times // factor, n_freqs)
            NaN where a bin is not made of ``factor`` valid frames.
        """
        check_is_fitted(self, "n_features_in_")
        data = self._validate(X, reset=False)
        _check_lengths_after_rebin(data.lengths, self.factor)
        Xt = _rebin_frames(data.X, self.factor, self.reduce)
        valid = np.arange(Xt.shape[1]) < (data.lengths // self.factor)[:, None]
        return self._checked(Xt, valid, data)

    def _nan_cause(self, data: StimulusSet, s: int, t: int) -> str:
        frames = data.X[s, t * self.factor:(t + 1) * self.factor]
        return (f"its input frames {t * self.factor}..{(t + 1) * self.factor - 1} there range "
                f"from {frames.min():g} to {frames.max():g}")


class FeatureSpaces(_StimulusTransformer):
    """Stack feature spaces made from a spectrogram: itself, its onsets, its envelope, ...

    Each space is a group of consecutive bands along the last axis of the output, in the
    order of ``spaces``; their sizes are ``feature_spaces_`` after ``fit`` (e.g.
    ``[34, 34, 1]`` for a 34-band spectrogram, its onsets and its envelope), the form
    :class:`~skstrf.STRFRegressor`'s ``feature_spaces`` parameter takes, so that each
    space can get its own penalty in ``make_pipeline(FeatureSpaces(...),
    STRFRegressor(...))``. ``fit`` learns nothing from the data but the number of bands.

    The spaces, for a spectrogram ``X`` and ``d[t] = X[t] - X[t - derivative_lag]``:

    - ``"spectrogram"``: ``X`` itself (``n_freqs`` bands);
    - ``"onsets"``: ``max(d, 0)``, the half-wave-rectified increase of each band;
    - ``"offsets"``: ``max(-d, 0)``, the half-wave-rectified decrease of each band;
    - ``"derivative"``: ``d``, signed;
    - ``"envelope"``: the mean of ``X`` over bands (1 band).

    The difference is causal and stays within a stimulus: frame t uses frames t and
    t - ``derivative_lag`` only. The first ``derivative_lag`` frames of a stimulus are
    compared with its own first frame, so the first frame's difference is 0: nothing in
    the three difference spaces depends on where zero is in X's units (an offset added to
    X changes none of them). NaN end-padding frames stay NaN.

    A linear STRF with ``n_lags > derivative_lag`` can already weigh ``X[t] - X[t - lag]``
    and the band mean (all but at the start of each stimulus): ``"derivative"`` and
    ``"envelope"`` add no new input to a plain ridge, only a space that can get its own
    penalty. The rectified spaces are new inputs
    (a linear STRF of ``X`` cannot respond to increases only).

    Parameters
    ----------
    spaces : list or tuple of str, default=("spectrogram", "onsets", "envelope")
        The spaces to make, in output order, each at most once, among ``"spectrogram"``,
        ``"onsets"``, ``"offsets"``, ``"derivative"`` and ``"envelope"``.
    derivative_lag : int, default=1
        Frames between the two frames of the difference (``"onsets"``, ``"offsets"``,
        ``"derivative"``); ignored by the other spaces.

    Attributes
    ----------
    n_features_in_ : int
        Number of frequency bands seen in ``fit``.
    feature_names_in_ : ndarray of str objects of shape (``n_features_in_``,)
        Band names, when ``fit`` was given a DataFrame with string column names.
    space_names_ : list of str
        The spaces made, in output order.
    feature_spaces_ : list of int
        Number of bands of each space, in output order; they add up to
        ``n_features_out_``.
    n_features_out_ : int
        Number of output bands.

    See Also
    --------
    skstrf.STRFRegressor : Its ``feature_spaces`` parameter takes ``feature_spaces_``.

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.preprocessing import FeatureSpaces
    >>> X = np.array([[[1.0, 4.0], [3.0, 2.0], [2.0, 5.0]]])  # 1 stimulus, 3 frames, 2 bands
    >>> fs = FeatureSpaces(spaces=("spectrogram", "onsets", "envelope")).fit(X)
    >>> fs.transform(X)[0]
    array([[1. , 4. , 0. , 0. , 2.5],
           [3. , 2. , 2. , 0. , 2.5],
           [2. , 5. , 0. , 3. , 3.5]])
    >>> fs.feature_spaces_, fs.space_names_
    ([2, 2, 1], ['spectrogram', 'onsets', 'envelope'])
    >>> fs.get_feature_names_out().tolist()
    ['spectrogram_0', 'spectrogram_1', 'onsets_0', 'onsets_1', 'envelope']
    """

    _parameter_constraints: dict = {
        "spaces": "no_validation",  # _check_spaces says what is wrong with it
        "derivative_lag": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, spaces=("spectrogram", "onsets", "envelope"), derivative_lag: int = 1) -> None:
        self.spaces = spaces
        self.derivative_lag = derivative_lag

    def _check_params(self) -> tuple[str, ...]:
        """The validated spaces, once both parameters are checked (before any work on X)."""
        spaces = _check_spaces(self.spaces)
        self._validate_params()
        if isinstance(self.derivative_lag, (bool, np.bool_)):  # an Integral to the constraint
            raise ValueError(f"derivative_lag must be a number of frames, an int >= 1; got "
                             f"{self.derivative_lag!r}.")
        return spaces

    def fit(self, X, y=None) -> "FeatureSpaces":
        """Check the spaces and the stimuli, and record the number of bands.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Stimuli, NaN-padded at the end; a DataFrame (frames by bands) records its band
            names.
        y : None
            Ignored.

        Returns
        -------
        self : FeatureSpaces
        """
        spaces = self._check_params()
        names = feature_names(X)
        self._validate(X, reset=True)
        if names is None:
            self.__dict__.pop("feature_names_in_", None)
        else:
            self.feature_names_in_ = names
        self.space_names_ = list(spaces)
        self.feature_spaces_ = [1 if name == "envelope" else self.n_features_in_ for name in spaces]
        self.n_features_out_ = sum(self.feature_spaces_)
        return self

    def transform(self, X) -> np.ndarray:
        """Make the feature spaces of ``X``, side by side.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Stimuli, NaN-padded at the end.

        Returns
        -------
        Xt : ndarray of shape (n_stimuli, n_times, ``n_features_out_``) or \
                (n_times, ``n_features_out_``)
            The spaces in the order of ``space_names_``, NaN on padding frames.
        """
        check_is_fitted(self, "feature_spaces_")
        # parameters set after fit would make an output that feature_spaces_ does not describe
        spaces = self._check_params()
        if list(spaces) != self.space_names_:
            raise ValueError(
                f"spaces is {list(spaces)} but FeatureSpaces was fitted with "
                f"{self.space_names_}: fit it again so that feature_spaces_ describes the output."
            )
        check_feature_names(X, getattr(self, "feature_names_in_", None), type(self).__name__)
        data = self._validate(X, reset=False)
        Xt = _stack_spaces(data.X, spaces, self.derivative_lag)
        return self._checked(Xt, data.frame_mask, data)

    def _nan_cause(self, data: StimulusSet, s: int, t: int) -> str:
        frames = data.X[s, max(t - self.derivative_lag, 0): t + 1]
        return (f"its input frames {max(t - self.derivative_lag, 0)}..{t} there range from "
                f"{frames.min():g} to {frames.max():g}")

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Output band names: ``"<space>_<band>"`` for each band of each space, ``"envelope"``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names of the input bands; ``None`` uses ``feature_names_in_`` when ``fit`` saw
            a DataFrame, else the band indices ``0, 1, ...`` (``"onsets_3"`` is the onsets
            of band 3).

        Returns
        -------
        feature_names_out : ndarray of str objects of shape (``n_features_out_``,)
        """
        check_is_fitted(self, "feature_spaces_")
        fitted = getattr(self, "feature_names_in_", None)
        if input_features is None:
            bands = fitted if fitted is not None else [str(f) for f in range(self.n_features_in_)]
        else:
            bands = _check_input_features(input_features, self.n_features_in_)
            if fitted is not None and not np.array_equal(bands, fitted):
                raise ValueError("input_features is not equal to feature_names_in_: pass the "
                                 "band names fit saw, or None.")
        out = []
        for space in self.space_names_:
            out.extend(["envelope"] if space == "envelope" else [f"{space}_{band}" for band in bands])
        return np.asarray(out, dtype=object)


def rebin_time(X, y=None, *, factor: int, x_reduce: str = "mean", y_reduce: str = "sum"):
    """Rebin stimuli and responses together in time.

    ``factor`` consecutive frames become one: the stimulus frames are averaged
    (``x_reduce``) and the responses summed (``y_reduce``; spike counts per bin add up).
    Each stimulus keeps ``n_valid // factor`` frames, an incomplete trailing bin is dropped
    in X and y alike, and missing repeats stay NaN.

    Parameters
    ----------
    X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
        Stimuli, NaN-padded at the end.
    y : array-like or None, default=None
        Responses in any layout of the data contract, e.g.
        (n_stimuli, n_times, n_neurons, n_repeats).
    factor : int
        Number of input frames per output frame.
    x_reduce, y_reduce : {"mean", "sum", "max"}, default="mean" and "sum"
        How the frames of a bin are combined in X and in y.

    Returns
    -------
    X_rebinned : ndarray of shape X's with n_times // factor frames
    y_rebinned : ndarray of shape y's with n_times // factor frames
        Only when ``y`` is given.

    Examples
    --------
    >>> import numpy as np
    >>> from skstrf.preprocessing import rebin_time
    >>> X, y = np.ones((1, 6, 2)), np.ones((1, 6, 3))
    >>> Xr, yr = rebin_time(X, y, factor=3)
    >>> Xr.shape, yr[0, :, 0]
    ((1, 2, 2), array([3., 3.]))
    """
    if isinstance(factor, bool) or not isinstance(factor, numbers.Integral) or factor < 1:
        raise ValueError(f"factor must be a positive integer; got {factor!r}")
    for name, value in (("x_reduce", x_reduce), ("y_reduce", y_reduce)):
        if value not in _REDUCERS:
            raise ValueError(f"{name} must be one of {list(_REDUCERS)}; got {value!r}")
    data = check_stimuli(X)
    _check_lengths_after_rebin(data.lengths, factor)
    X_out = to_user_layout(_rebin_frames(data.X, factor, x_reduce), data.x_ndim)
    if y is None:
        return X_out
    data = check_responses(y, data)
    y4 = _rebin_frames(data.y, factor, y_reduce)
    # (S, T, N, R) back to y's own layout: drop the repeat axis the user's y did not have,
    # then the neuron axis and the stimulus axis as the layout rules say
    y_out = y4 if data.y_layout == "repeats" else y4[..., 0]
    return X_out, to_user_layout(y_out, data.x_ndim, data.y_layout)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------
def _check_input_features(input_features, n_features: int) -> np.ndarray:
    """Validate band names; ``None`` gives scikit-learn's default ``x0, x1, ...``."""
    if input_features is None:
        return _default_names(n_features)
    names = np.asarray(input_features, dtype=object)
    if names.ndim != 1 or names.size != n_features:
        raise ValueError(
            f"input_features should have length equal to the number of frequency bands "
            f"({n_features}), got {names.size}."
        )
    return names


def _get_tags_or_default(estimator, tag: str) -> bool:
    """An input tag of the wrapped transformer; False for one without scikit-learn tags."""
    try:
        return bool(getattr(get_tags(estimator).input_tags, tag))
    except AttributeError:  # not derived from BaseEstimator
        return False
