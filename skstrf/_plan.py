"""The plan of one fit: every option of :class:`~skstrf.STRFRegressor` resolved and checked."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import KFold, check_cv
from sklearn.utils.validation import check_random_state

from sklearn.utils._param_validation import Interval

from ._net import check_callbacks, check_net_params
from .prefilters import PREFILTERS, check_dt_ms
from ._validation import (FrameMoments, StimulusSet, check_non_negative, check_stimulus_level, check_X_y,
                         validation_split)

__all__ = ["FitPlan", "fold_groups", "make_plan", "check_fit_options", "check_groups", "plan_fit", "resolve_device",
           "is_linear", "resolve_solver"]

#: The penalty grid of the closed-form solvers when ``alpha=None``.
DEFAULT_ALPHAS = np.logspace(-4, 2, 13)


@dataclass(frozen=True)
class FitPlan:
    """What one ``fit`` does, decided before any work.

    Attributes
    ----------
    solver : {"ridge", "als", "gradient"}
        How the kernel is fitted.
    closed_form : bool
        Whether a closed-form solution is computed: the fit itself (ridge, ALS) or the
        start of gradient training.
    linear : bool
        Whether the model is linear and fitted by least squares: only such a model has the
        closed-form solvers and the frame-free statistics training step.
    alphas : ndarray of shape (n_alphas,)
        Penalty grid (one value for a single penalty).
    warm : bool
        Whether gradient training continues the previous fit.
    device : str
        Torch device.
    seed : int
        Seed of the kernel's random start and of the stimulus shuffling.
    train, valid : ndarray of int
        Indices of the training and validation stimuli.
    separable_shape : (n_freqs, n_lags, rank) or None
        For ALS: the shape of the separable kernel.
    folds : list of (ndarray, ndarray) or None
        Cross-validation folds for the penalty, over the rows of the training statistics
        (stimuli, or blocks of one continuous recording); None: no cross-validation.
    n_blocks : int
        Contiguous blocks per training stimulus in the statistics (more than 1 only to
        cross-validate within one continuous recording).
    per_neuron : bool
        Whether each neuron gets its own penalty.
    pooling : float
        Weight of the mean score over neurons in each neuron's penalty choice.
    model : dict
        Keyword arguments of :func:`skstrf._model.build_model`.
    net : dict
        Keyword arguments of :func:`skstrf._net.build_net` (routed skorch parameters included).
    """

    solver: str
    closed_form: bool
    linear: bool
    alphas: torch.Tensor
    warm: bool
    device: str
    seed: int
    train: np.ndarray
    valid: np.ndarray
    separable_shape: tuple[int, int, int] | None
    folds: list | None
    n_blocks: int
    per_neuron: bool
    pooling: float
    model: dict
    net: dict

    @property
    def choose_penalty(self) -> bool:
        """Whether the penalty is chosen from a grid (by the closed-form solvers)."""
        return self.alphas.numel() > 1

    @property
    def statistics(self) -> bool:
        """Whether the fit uses the training stimuli's sufficient statistics."""
        return self.closed_form or self.linear or self.choose_penalty

    def row_groups(self) -> tuple[np.ndarray | None, list | None]:
        """How the training statistics' rows may be summed, and the folds over the sums.

        A closed-form fit (ridge, ALS) needs the statistics only summed over each fold's
        training and held-out rows, and over all rows: the rows that every fold treats
        alike are merged (:func:`fold_groups`; all rows into one without folds). Gradient
        training draws batches of stimuli, so it keeps one row per stimulus (or block).

        Returns
        -------
        groups : ndarray of int of shape (n_rows,) or None
            The group of each row (stimulus, or block), None for one row each.
        folds : list of (ndarray, ndarray) or None
            :attr:`folds` over the groups (over the rows when ``groups`` is None).
        """
        if self.solver == "gradient":
            return None, self.folds
        n_rows = self.train.size * self.n_blocks
        if self.folds is None:
            return np.zeros(n_rows, dtype=np.int64), None
        return fold_groups(self.folds, n_rows)


def make_plan(est, X, y, net_params: dict, groups=None) -> tuple[FitPlan, StimulusSet]:
    """Check ``est``'s options against each other and the data; return the plan and the data.

    Every option-compatibility check of a fit is here, so that a bad combination is
    reported before any data are converted or any model is built.

    Parameters
    ----------
    est : STRFRegressor
        The estimator about to be fitted (its parameters, and its previous fit for a warm start).
    X, y : array-like
        The data passed to ``fit``.
    net_params : dict
        The estimator's routed skorch parameters.
    groups : array-like of shape (n_stimuli,) or None, default=None
        The group of each stimulus, for ``est.cv``'s splitter (:func:`check_groups`).

    Returns
    -------
    plan : FitPlan
    data : StimulusSet
        The validated data.
    """
    device = check_fit_options(est, y, net_params)
    if groups is not None:  # checked before the data are read: X's shape only
        shape = getattr(X, "shape", None)
        groups = check_groups(groups, est.cv, None if shape is None else tuple(shape))
    data = check_X_y(X, y)
    if est.loss == "poisson":
        check_non_negative(data.y)
    return plan_fit(est, data, device, net_params, groups=groups)


def check_groups(groups, cv, x_shape: tuple[int, ...] | None) -> np.ndarray | None:
    """Validate the groups of stimuli that ``fit`` passes to ``cv``'s splitter.

    Parameters
    ----------
    groups : array-like of shape (n_stimuli,) or None
        One label per stimulus of X (e.g. the sound each excerpt comes from): a group
        splitter (``GroupKFold``, ``LeaveOneGroupOut``, ...) as ``cv`` keeps each group's
        stimuli in one fold.
    cv : int, splitter, iterable or None
        The estimator's ``cv``.
    x_shape : tuple of int or None
        X's shape, when known: its stimuli are counted from it.

    Returns
    -------
    ndarray of shape (n_stimuli,) or None
    """
    if groups is None:
        return None
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise ValueError(f"groups must be 1-D, one label per stimulus; got shape {groups.shape}.")
    if cv is None or isinstance(cv, numbers.Integral) or not hasattr(cv, "split"):
        kind = ("chooses the penalty on validation stimuli" if cv is None else
                "cuts contiguous folds of stimuli" if isinstance(cv, numbers.Integral) else
                "is a list of folds, which takes no groups")
        raise ValueError(f"groups are passed to cv's splitter, but cv={cv!r} {kind}; pass a group "
                         "splitter, e.g. cv=GroupKFold(5), or no groups.")
    if x_shape is not None and (len(x_shape) == 2 or (len(x_shape) == 3 and x_shape[0] == 1)):
        raise ValueError("groups label stimuli, but X is one continuous recording (a single "
                         "stimulus): its folds are contiguous time blocks, not groups.")
    if x_shape is not None and len(x_shape) == 3 and groups.size != x_shape[0]:
        raise ValueError(f"groups has {groups.size} labels, but X has {x_shape[0]} stimuli; "
                         "give one label per stimulus.")
    if groups.dtype.kind == "f" and np.isnan(groups).any():
        raise ValueError("groups has NaN labels; give every stimulus a group.")
    try:  # splitters sort the labels
        np.unique(groups)
    except TypeError as exc:
        raise ValueError(f"groups labels must be comparable with each other (all numbers or all "
                         f"strings); got {sorted({type(g).__name__ for g in groups})}.") from exc
    return groups


def check_fit_options(est, y, net_params: dict) -> str:
    """The checks of :func:`make_plan` that need no data: the options against each other.

    Returns the torch device of the fit. Separate so that data that are not in memory
    (:mod:`skstrf._chunked`) get the same errors before any of them is read.
    """
    if y is None:
        raise ValueError(
            f"{type(est).__name__} requires y to be passed, but the target y is None; "
            "pass responses of shape (n_stimuli, n_times, n_neurons, n_repeats)."
        )
    _check_not_bool(est)
    check_net_params(net_params)
    check_callbacks(est.callbacks)
    device = resolve_device(est.device)
    if est.loss == "poisson" and est.nonlinearity == "identity":
        raise ValueError(
            "loss='poisson' needs a positive predicted rate, which nonlinearity='identity' "
            "does not guarantee; use nonlinearity='softplus' or 'exp' (or loss='mse')."
        )
    if est.prefilter is not None:
        check_dt_ms(est.dt_ms, est.freq_range)  # checks freq_range too
    return device


def plan_fit(est, data: StimulusSet, device: str, net_params: dict,
             x_moments: FrameMoments | None = None, groups: np.ndarray | None = None
             ) -> tuple[FitPlan, StimulusSet]:
    """The rest of :func:`make_plan`: the options against validated ``data``.

    ``x_moments``: X's :class:`~skstrf._validation.FrameMoments` when already known; then
    only ``data``'s shape and lengths are read (see :mod:`skstrf._chunked`). ``groups``: the
    group of each stimulus, for ``est.cv``'s splitter, already checked against X's shape by
    :func:`check_groups` (its callers do so before the data are read).
    """
    _check_shape_options(est, data)
    if est.prefilter is None:
        check_stimulus_level(data, est.n_lags, x_moments)
    linear = is_linear(est)
    solver = resolve_solver(est, linear)
    # A closed-form solution does not depend on where it starts: only gradient training
    # has a state to continue.
    warm = bool(est.warm_start) and hasattr(est, "net_") and solver == "gradient"
    if warm and (data.X.shape[2] != est.n_features_in_ or data.y.shape[2] != est.n_neurons_):
        raise ValueError(
            "warm_start=True needs the same number of frequency bands and neurons as the "
            f"previous fit ({est.n_features_in_} and {est.n_neurons_}); got "
            f"{data.X.shape[2]} and {data.y.shape[2]}."
        )
    closed_start = _resolve_init(est, linear) == "closed_form"
    if solver != "gradient" and est.cv is not None:
        # Cross-validation chooses the penalty: no stimulus needs to be held out.
        train, valid = np.arange(data.n_stimuli), np.arange(0)
    else:
        data, train, valid = validation_split(data, est.validation_fraction)
    if est.alpha is not None and np.size(est.alpha) == 1:
        folds, n_blocks = None, 1  # one penalty: nothing to cross-validate, cv is not used
    else:
        folds, n_blocks = _folds(est.cv, data.lengths[train], None if groups is None else groups[train])
    alphas = _penalties(est, solver, closed_start, has_valid=valid.size > 0, has_folds=folds is not None)
    seed = int(check_random_state(est.random_state).randint(np.iinfo(np.int32).max))
    model = dict(kernel=est.kernel, n_lags=est.n_lags, rank=est.rank, n_gaussians=est.n_gaussians,
                 nonlinearity=est.nonlinearity, prefilter=est.prefilter, dt_ms=est.dt_ms,
                 freq_range=est.freq_range, seed=seed)
    net = dict(device=device, loss=est.loss, lr=est.lr, max_epochs=est.max_epochs,
               batch_size=est.batch_size, patience=est.patience,
               alpha=float(alphas[0]) if alphas.size == 1 else 0.0, callbacks=est.callbacks,
               verbose=est.verbose, net_params=net_params, seed=seed)
    plan = FitPlan(
        solver=solver,
        closed_form=not warm and (solver != "gradient" or closed_start),
        linear=linear,
        alphas=torch.as_tensor(alphas, dtype=torch.float64, device=device),
        warm=warm,
        device=device,
        seed=seed,
        train=train,
        valid=valid,
        separable_shape=(data.X.shape[2], est.n_lags, est.rank) if solver == "als" else None,
        folds=folds if alphas.size > 1 else None,
        n_blocks=n_blocks if alphas.size > 1 else 1,
        per_neuron=bool(est.alpha_per_neuron),
        pooling=float(est.alpha_pooling),
        model=model,
        net=net,
    )
    return plan, data


def resolve_device(device: str) -> str:
    """The torch device named by ``device`` ("auto" is CUDA when available)."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}; expected 'auto', 'cpu' or 'cuda[:i]'") from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use 'auto' or 'cpu'.")
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; expected 'auto', 'cpu' or 'cuda[:i]'")
    return device


def _check_not_bool(est) -> None:
    """Reject True/False for integer parameters (Python counts bool as an int)."""
    for name, constraints in type(est)._parameter_constraints.items():
        value = getattr(est, name)
        integral = any(isinstance(c, Interval) and c.type is numbers.Integral for c in constraints)
        if integral and isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name}={value!r} is a bool; expected an int (e.g. {name}=1).")


def _check_shape_options(est, data: StimulusSet) -> None:
    """``n_lags`` and ``rank`` against the data's lengths and bands."""
    longest = int(data.lengths.max())
    if est.n_lags > longest:
        raise ValueError(
            f"n_lags={est.n_lags} is longer than every stimulus: the longest has "
            f"{longest} valid frames (n_samples={longest} time samples); use "
            f"n_lags <= {longest}."
        )
    max_rank = min(data.X.shape[2], est.n_lags)
    if est.kernel == "separable" and est.rank > max_rank:
        raise ValueError(
            f"rank={est.rank} exceeds min(n_freqs, n_lags) = {max_rank}: a separable "
            f"kernel of rank {max_rank} is already unconstrained; use rank <= {max_rank} "
            "or kernel='vanilla'."
        )


def is_linear(est) -> bool:
    """Whether the model is linear and fitted by least squares: the one place that decides it.

    Only such a model has the closed-form solvers and the frame-free statistics training
    step (exact for it alone); anything else trains by gradient on forward passes.
    """
    # A fixed linear prefilter (IC adaptation) is a linear map of the stimulus: its output
    # is the design.
    fixed_prefilter = est.prefilter is None or PREFILTERS[est.prefilter].linear_map
    return est.nonlinearity == "identity" and est.loss == "mse" and fixed_prefilter


def resolve_solver(est, linear: bool) -> str:
    """The solver a fit of ``est`` uses ("ridge", "als" or "gradient"), ``solver="auto"``
    resolved; raises ValueError when ``est.solver`` cannot fit its model.

    Parameters
    ----------
    est : STRFRegressor
    linear : bool
        :func:`is_linear` of ``est``.
    """
    compatible = {"ridge": "vanilla", "als": "separable"}
    if not linear:
        if est.solver in compatible:
            raise ValueError(
                f"solver={est.solver!r} fits linear least-squares models only, but "
                f"nonlinearity={est.nonlinearity!r}, loss={est.loss!r}, "
                f"prefilter={est.prefilter!r}; use solver='gradient' or 'auto' (which "
                "starts gradient training from the closed-form linear solution)."
            )
        return "gradient"
    if est.solver == "auto":
        return {"vanilla": "ridge", "separable": "als"}.get(est.kernel, "gradient")
    if est.solver in compatible and compatible[est.solver] != est.kernel:
        raise ValueError(
            f"solver={est.solver!r} fits the {compatible[est.solver]!r} kernel only, but "
            f"kernel={est.kernel!r}; use solver='gradient' or 'auto'."
        )
    return est.solver


def _resolve_init(est, linear: bool) -> str:
    if est.init == "auto":
        return "closed_form" if est.kernel == "parametric" or not linear else "random"
    return est.init


def _folds(cv, lengths: np.ndarray, groups: np.ndarray | None = None) -> tuple[list | None, int]:
    """Cross-validation folds over the training stimuli (of valid ``lengths``, in
    ``groups`` for the splitter), or over contiguous blocks of a single one (a continuous
    recording); and the number of blocks per stimulus. None when there are fewer than two
    stimuli or blocks to split."""
    if cv is None:
        return None, 1
    # a splitter, or an iterable of (train, test) index pairs (wrapped like scikit-learn does)
    splitter = None if isinstance(cv, numbers.Integral) else check_cv(cv)
    # a single recording is cut into as many contiguous blocks as there are folds
    n_blocks = min(_n_splits(cv, splitter), int(lengths[0])) if lengths.size == 1 else 1
    n_rows = lengths.size * n_blocks
    if n_rows < 2:
        return None, 1
    rows = "stimuli" if n_blocks == 1 else "time blocks of the recording"
    splitter = KFold(min(int(cv), n_rows)) if splitter is None else splitter
    try:
        split = splitter.split(np.zeros((n_rows, 1)), groups=None if n_blocks > 1 else groups)
        folds = [(np.asarray(a), np.asarray(b)) for a, b in split]
    except ValueError as exc:
        if groups is None:
            hint = ("A splitter passed as cv sees one row per stimulus (or per time block of a "
                    "single recording); a group splitter needs fit(X, y, groups=...), one label "
                    "per stimulus.")
        else:
            hint = (f"They hold {np.unique(groups).size} groups (the training stimuli: those "
                    "that validation_fraction holds out for gradient training are not among them).")
        raise ValueError(
            f"cv={cv!r} could not split the {n_rows} {rows} that the penalty is cross-validated "
            f"on: {exc} {hint}"
        ) from exc
    for train, test in folds:
        if train.size == 0 or test.size == 0:
            raise ValueError(f"cv={cv!r} gave a fold with no training or no held-out stimulus.")
        index = np.concatenate([train, test])
        if index.dtype.kind not in "iu":
            raise ValueError(f"cv={cv!r} gave a fold of non-integer indices ({index.dtype}).")
        outside = np.unique(index[(index < 0) | (index >= n_rows)])
        if outside.size:
            raise ValueError(
                f"cv={cv!r} gave a fold with indices outside the {n_rows} {rows} the penalty "
                f"is cross-validated on: {outside[:5].tolist()}."
            )
    return folds, n_blocks


def _n_splits(cv, splitter) -> int:
    """Number of folds of ``cv`` (an int, or ``splitter``, its :func:`check_cv` form) when
    it does not depend on the data, as the blocks of a single recording need."""
    if splitter is None:
        return int(cv)
    try:
        return int(splitter.get_n_splits())
    except (TypeError, ValueError) as exc:  # e.g. LeaveOneOut: as many folds as rows
        raise ValueError(
            f"cv={cv!r} cannot tell its number of folds without the data, but a single "
            "recording is cut into as many contiguous time blocks as cv has folds: pass an "
            "int K or skstrf.model_selection.ContiguousBlocks(K)."
        ) from exc


def fold_groups(folds, n_rows: int) -> tuple[np.ndarray, list]:
    """Merge the rows that every fold treats alike.

    The cross-validated penalty needs, per fold, only the statistics summed over its
    training rows and over its held-out rows. Rows that are in the same role (training,
    held out, or neither) in every fold can therefore be summed once, up front: for
    ``KFold`` the groups are the folds' held-out sets, and the statistics shrink from
    one per stimulus to one per fold.

    Parameters
    ----------
    folds : list of (ndarray, ndarray)
        Training and held-out row indices of each fold.
    n_rows : int
        Number of rows (stimuli, or blocks of a recording) the folds index.

    Returns
    -------
    groups : ndarray of int of shape (n_rows,)
        The group of each row, ``0 .. n_groups - 1``.
    group_folds : list of (ndarray, ndarray)
        The same folds over groups.
    """
    roles = np.zeros((n_rows, 2 * len(folds)), dtype=bool)
    for k, (train, test) in enumerate(folds):
        roles[np.asarray(train), 2 * k] = True
        roles[np.asarray(test), 2 * k + 1] = True
    keys, groups = np.unique(roles, axis=0, return_inverse=True)
    group_folds = [(np.flatnonzero(keys[:, 2 * k]), np.flatnonzero(keys[:, 2 * k + 1]))
                   for k in range(len(folds))]
    return groups.reshape(-1), group_folds


def _penalties(est, solver: str, closed_start: bool, has_valid: bool, has_folds: bool) -> np.ndarray:
    """The penalty grid (1-D, non-empty) this fit uses."""
    if est.alpha is None:
        if has_folds:
            return DEFAULT_ALPHAS.copy()
        if solver == "gradient" and not closed_start:
            return np.zeros(1)
        return DEFAULT_ALPHAS.copy() if has_valid else np.array([1e-3])
    alphas = np.atleast_1d(np.asarray(est.alpha, dtype=np.float64))
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
        raise ValueError(
            f"alpha must be a non-negative float or a non-empty 1-D sequence of them; got {est.alpha!r}"
        )
    if alphas.size > 1 and solver == "gradient" and not has_folds:
        raise ValueError(
            f"solver='gradient' trains with a single penalty, but alpha has {alphas.size} values "
            "and cv=None; pass cv (the penalty is then chosen by cross-validating the linear "
            "model), search a grid with GridSearchCV, or use solver='ridge'/'als'."
        )
    if alphas.size > 1 and not (has_valid or has_folds):
        raise ValueError(
            "choosing alpha from a grid needs validation stimuli or cross-validation folds, but "
            "cv=None and none is held out (validation_fraction=None or a single stimulus); "
            "pass cv or a single alpha."
        )
    return alphas
