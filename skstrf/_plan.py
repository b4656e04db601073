"""The plan of one fit: every option of :class:`~skstrf.STRFRegressor` resolved and checked,
first alone (:func:`fit_options`, before any data are read), then against the data's shape
(:func:`make_plan`). Planning reads no data values and builds nothing."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch
from skorch.callbacks import Callback, EpochScoring
from sklearn.model_selection import KFold, check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_random_state

from ._history import check_history
from ._layout import DataShape, is_one_recording
from ._penalty import Penalty, PenaltyFamily, penalty_family, smoothness_grid
from ._selection import alpha_grid
from ._solvers import AUTO_RANKS, SOLVERS, resolve_solver
from ._validation import validation_split
from .kernels import lag_basis, orthonormal_lag_basis
from .prefilters import PREFILTERS, check_dt_ms, make_prefilter

__all__ = ["FitOptions", "FitPlan", "fit_options", "make_plan", "fold_groups", "check_groups", "is_linear",
           "separable_ranks", "learning_rate", "DEFAULT_LR", "FINE_TUNING_LR",
           "resolve_device", "NET_PARAM_PREFIXES", "check_net_params", "check_callbacks"]

# skorch's routing prefixes that STRFRegressor passes through to its net.
NET_PARAM_PREFIXES = ("optimizer__", "iterator_train__", "iterator_valid__", "callbacks__")

#: AdamW's learning rate for ``lr="auto"``: training from a random start (and the linear
#: model's gradient fits), chosen on the synthetic benchmark (``benchmarks/RESULTS.md``,
#: "Defaults").
DEFAULT_LR = 1e-3
#: ... and for fine-tuning (:attr:`FitOptions.fine_tunes`): from the two-stage start, 1e-3
#: throws the auditory nerve's LN model off its start within three epochs (test cc_norm
#: 0.84 -> 0.66) and early stopping then picks noise; 1e-4 rises smoothly
#: (``benchmarks/kernels_earn.py``).
FINE_TUNING_LR = 1e-4


def learning_rate(lr, fine_tunes: bool) -> float:
    """The learning rate of a fit: ``lr`` as given, or for "auto" :data:`FINE_TUNING_LR`
    when the fit fine-tunes (:attr:`FitOptions.fine_tunes`), :data:`DEFAULT_LR` otherwise."""
    if isinstance(lr, str) and lr == "auto":
        return FINE_TUNING_LR if fine_tunes else DEFAULT_LR
    return float(lr)


@dataclass(frozen=True)
class FitOptions:
    """What a fit does, decided from the estimator's options alone (no data).

    Attributes
    ----------
    device : str
        Torch device.
    linear : bool
        Whether the model is linear and fitted by least squares (:func:`is_linear`).
    solver : str
        The key of :data:`skstrf._solvers.SOLVERS` that fits the kernel.
    closed_start : bool
        Whether gradient training starts from the closed-form solution.
    holds_out : bool
        Whether stimuli are held out for validation (gradient training, or ``cv=None``).
    lag_basis : ndarray of shape (n_lags, n_basis) or None
        The functions that the kernel's lag profiles combine (:func:`skstrf.kernels.lag_basis`).
    fine_tunes : bool
        Whether gradient training fine-tunes a model whose every parameter starts fitted to
        the data: a model that is not linear (an output nonlinearity or the Poisson loss)
        without a learnable front end, from its closed-form start (the two-stage model).
        Such a fit takes :data:`FINE_TUNING_LR` for ``lr="auto"`` and, with validation
        stimuli, is made again on every stimulus for the validated number of epochs
        (:attr:`FitPlan.refits`). AdapTrans's front end starts at its literature
        values, not fitted: its models keep :data:`DEFAULT_LR` and the validated model.
    """

    device: str
    linear: bool
    solver: str
    closed_start: bool
    holds_out: bool
    lag_basis: np.ndarray | None = None
    fine_tunes: bool = False


def fit_options(est, y, net_params: dict) -> FitOptions:
    """Check ``est``'s options against each other, before any data are read.

    Parameters
    ----------
    est : STRFRegressor
    y : array-like or None
        Only whether it is None.
    net_params : dict
        The estimator's routed skorch parameters.

    Returns
    -------
    FitOptions
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
    linear = is_linear(est)
    solver = resolve_solver(est.solver, est.kernel, linear)
    if not linear and SOLVERS[solver].from_statistics:
        raise ValueError(
            f"solver={est.solver!r} fits linear least-squares models only, but "
            f"nonlinearity={est.nonlinearity!r}, loss={est.loss!r}, "
            f"prefilter={est.prefilter!r}; use solver='gradient' or 'auto' (which "
            "starts gradient training from the closed-form linear solution)."
        )
    init = est.init if est.init != "auto" else (
        "closed_form" if est.kernel == "parametric" or not linear else "random")
    gradient = not SOLVERS[solver].from_statistics
    basis = lag_basis(est.lag_basis, est.n_lags)
    smoothness_grid(est.smooth_freq, est.smooth_lag)  # checked before any data are read
    fixed_front = est.prefilter is None or PREFILTERS[est.prefilter].linear_map
    fine_tunes = gradient and init == "closed_form" and not linear and fixed_front
    return FitOptions(device, linear, solver, init == "closed_form", holds_out=gradient or est.cv is None,
                      lag_basis=basis, fine_tunes=fine_tunes)


@dataclass(frozen=True)
class FitPlan:
    """What one ``fit`` does, decided before any work.

    Attributes
    ----------
    options : FitOptions
        The decisions made from the options alone (device, solver, ...).
    closed_form : bool
        Whether a closed-form solution is computed and loaded: the fit itself (ridge, ALS)
        or the start of an iterative fit (L-BFGS, gradient training).
    alphas : ndarray of shape (n_alphas,)
        Penalty grid (one value for a single penalty).
    family : PenaltyFamily
        The candidate penalty forms (:func:`skstrf._penalty.penalty_family`): one, or several
        that the closed form chooses among per neuron.
    history : str or ndarray of shape (n_freqs,)
        What precedes each stimulus (:func:`skstrf._history.check_history`).
    warm : bool
        Whether gradient training continues the previous fit.
    seed : int
        Seed of the kernel's random start and of the stimulus shuffling.
    train, valid : ndarray of int
        Indices of the training and validation stimuli (after ``cut``).
    cut : int or None
        For one recording with a validation block: the frame where the training block ends
        (the recording becomes two stimuli); None otherwise.
    separable_shape : (n_freqs, n_lags, rank) or None
        For ALS (the fit, or gradient training's start): the shape of the separable kernel
        (``n_basis`` in place of ``n_lags`` over a lag basis: ALS solves for the
        coefficients); ``rank`` an int, or a tuple of candidate ranks to choose among.
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
    rank_rule : {"best", "one_se"}
        How ALS chooses a separable kernel's rank among candidates
        (:func:`skstrf._solvers._choose_rank`).
    model : dict
        Keyword arguments of :func:`skstrf._model.build_model`.
    net : dict
        Keyword arguments of :func:`skstrf._net.build_net` (routed skorch parameters included).
    on_validated : bool
        Only in the final fit of a fine-tuned model without cross-validation folds
        (``cv=None``; :attr:`refits`): the closed form makes its choices (penalty, its form,
        a separable kernel's rank) on the validated run's validation stimuli, as that run
        did, and refits on every stimulus. Without it such a fit had nothing to choose on,
        and fell back to a fixed penalty and rank 1.
    """

    options: FitOptions
    closed_form: bool
    alphas: np.ndarray
    family: PenaltyFamily
    history: str | np.ndarray
    warm: bool
    seed: int
    train: np.ndarray
    valid: np.ndarray
    cut: int | None
    separable_shape: tuple[int, int, int] | None
    folds: list | None
    n_blocks: int
    per_neuron: bool
    pooling: float
    rank_rule: str
    model: dict
    net: dict
    on_validated: bool = False

    @property
    def solver(self) -> str:
        return self.options.solver

    @property
    def device(self) -> str:
        return self.options.device

    @property
    def linear(self) -> bool:
        return self.options.linear

    @property
    def refits(self) -> bool:
        """Whether the fit, once validation has chosen its number of epochs, is made again on
        every stimulus for that many (``make_plan(..., final_epochs=...)``): a fine-tuned
        model (:attr:`FitOptions.fine_tunes`) with validation stimuli, not continuing a
        previous fit."""
        return self.options.fine_tunes and self.closed_form and self.valid.size > 0

    @property
    def choose_penalty(self) -> bool:
        """Whether the penalty (or its form) is chosen from a grid (by the closed-form solvers)."""
        return self.alphas.size > 1 or len(self.family.forms) > 1

    @property
    def statistics(self) -> bool:
        """Whether the fit uses the training stimuli's sufficient statistics."""
        return self.closed_form or self.linear or self.choose_penalty

    @property
    def solve(self):
        """The closed-form solve of this fit (:data:`skstrf._solvers.SOLVERS`): the
        solver's own, or the one gradient training starts from (ALS for a separable kernel
        of one input channel, whose rank it chooses; ridge otherwise)."""
        if SOLVERS[self.solver].closed_form:
            return SOLVERS[self.solver].solve
        return SOLVERS["als" if self.separable_shape is not None else "ridge"].solve

    @property
    def penalty(self) -> Penalty:
        """The penalty training starts with: the single ``alpha``, or none until a closed
        form chooses one per neuron."""
        return Penalty(self.family.forms[0], float(self.alphas[0]) if not self.choose_penalty else 0.0)

    @property
    def solve_options(self) -> dict:
        """Keyword arguments of the closed-form solve (:data:`skstrf._solvers.SOLVERS`)."""
        return dict(form=self.family.forms, plain=self.family.plain, per_neuron=self.per_neuron,
                    pooling=self.pooling, shape=self.separable_shape, rank_rule=self.rank_rule)

    def make_prefilter(self, n_freqs: int):
        """A new front end of this fit (None without one), at its initial parameters."""
        return make_prefilter(self.model["prefilter"], n_freqs, dt_ms=float(self.model["dt_ms"]),
                              freq_range=self.model["freq_range"])

    @property
    def model_options(self) -> dict:
        """Keyword arguments of :func:`skstrf._model.build_model` (its front end aside)."""
        return {k: v for k, v in self.model.items() if k not in ("prefilter", "dt_ms", "freq_range")}

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


def make_plan(est, options: FitOptions, shape: DataShape, net_params: dict, groups=None, names=None,
              final_epochs: int | None = None) -> FitPlan:
    """Check ``est``'s options against the data's shape, and decide everything else.

    Parameters
    ----------
    est : STRFRegressor
        The estimator about to be fitted (its parameters, and its previous fit for a warm start).
    options : FitOptions
        From :func:`fit_options`.
    shape : DataShape
        The data's shape and the valid length of each stimulus.
    net_params : dict
        The estimator's routed skorch parameters.
    groups : ndarray of shape (n_stimuli,) or None, default=None
        The group of each stimulus for ``est.cv``'s splitter, checked by :func:`check_groups`.
    names : ndarray of str or None, default=None
        X's band names (a DataFrame's columns), for ``feature_spaces`` given by name.
    final_epochs : int or None, default=None
        The plan of a fine-tuned model's final fit (:attr:`FitPlan.refits`): every stimulus
        trains (none is held out, the penalty is cross-validated over them all; with
        ``cv=None``, chosen on the validated run's validation stimuli:
        :attr:`FitPlan.on_validated`) for this many epochs (0: the closed-form start alone).
        None: the fit as ``est`` says.

    Returns
    -------
    FitPlan
    """
    _check_shape_options(est, shape)
    gradient = not SOLVERS[options.solver].from_statistics
    # A fit on the statistics is made anew (a closed form does not depend on where it
    # starts): only gradient training has a state to continue.
    warm = bool(est.warm_start) and hasattr(est, "net_") and gradient
    if warm and (shape.n_freqs != est.n_features_in_ or shape.n_neurons != est.n_neurons_):
        raise ValueError(
            "warm_start=True needs the same number of frequency bands and neurons as the "
            f"previous fit ({est.n_features_in_} and {est.n_neurons_}); got "
            f"{shape.n_freqs} and {shape.n_neurons}."
        )
    if options.holds_out and final_epochs is None:
        train, valid, cut = validation_split(shape.lengths, est.validation_fraction)
    else:  # cross-validation chooses the penalty: no stimulus needs to be held out
        train, valid, cut = np.arange(shape.n_stimuli), np.arange(0), None
    lengths = shape.lengths if cut is None else np.array([cut, int(shape.lengths[0]) - cut])
    channels = len(PREFILTERS[est.prefilter].channel_names) if est.prefilter is not None else 1
    basis = options.lag_basis
    frame = None if basis is None else orthonormal_lag_basis(basis)
    family = penalty_family(est, (channels, shape.n_freqs, est.n_lags), names, frame)
    n_coefficients = est.n_lags if basis is None else basis.shape[1]
    ranks = separable_ranks(est.rank, shape.n_freqs, n_coefficients) if est.kernel == "separable" else (1,)
    separable_shape = None
    if options.solver == "als" or (est.kernel == "separable" and options.closed_start and channels == 1):
        separable_shape = (shape.n_freqs, n_coefficients, ranks if len(ranks) > 1 else ranks[0])
    choosing_rank = len(ranks) > 1 and separable_shape is not None
    if est.alpha is not None and np.size(est.alpha) == 1 and len(family.forms) == 1 and not choosing_rank:
        folds, n_blocks = None, 1  # one penalty: nothing to cross-validate, cv is not used
    else:
        folds, n_blocks = _folds(est.cv, lengths[train], None if groups is None else groups[train])
    # a final fit without folds (cv=None) chooses on the validated run's validation stimuli
    # (FitPlan.on_validated), as that run did
    on_valid = valid.size > 0 or final_epochs is not None
    alphas = alpha_grid(est.alpha, gradient=gradient, closed_start=options.closed_start,
                        has_valid=on_valid, has_folds=folds is not None)
    if len(family.forms) > 1 and not (folds is not None or on_valid):
        raise ValueError(
            f"choosing among {len(family.forms)} penalty forms (feature spaces' relative penalties, "
            "smoothness shares) needs cross-validation folds or validation stimuli, but cv=None and "
            "none is held out; pass cv, or a single form (one smoothness share, one candidate of "
            "space_penalties)."
        )
    if choosing_rank and not (folds is not None or on_valid):
        if isinstance(est.rank, str):  # "auto", the default, with nothing to choose on: its lowest rank
            ranks, choosing_rank = ranks[:1], False
            separable_shape = separable_shape[:2] + (ranks[0],)
        else:
            raise ValueError(
                f"choosing the separable kernel's rank among {list(ranks)} needs cross-validation folds or "
                "validation stimuli, but cv=None and none is held out; pass cv, or one rank (e.g. rank=1)."
            )
    choosing = alphas.size > 1 or len(family.forms) > 1 or choosing_rank
    seed = int(check_random_state(est.random_state).randint(np.iinfo(np.int32).max))
    # ALS chooses among the ranks (the kernel holds the largest); with nothing to choose
    # (gradient training from a random start) the lowest
    rank = max(ranks) if separable_shape is not None else min(ranks)
    model = dict(kernel=est.kernel, n_lags=est.n_lags, rank=rank, n_gaussians=est.n_gaussians,
                 nonlinearity=est.nonlinearity, prefilter=est.prefilter, dt_ms=est.dt_ms,
                 freq_range=est.freq_range, seed=seed, lag_basis=basis, space_of_band=family.space_of_band)
    net = dict(device=options.device, loss=est.loss, lr=learning_rate(est.lr, options.fine_tunes),
               max_epochs=est.max_epochs if final_epochs is None else final_epochs,
               batch_size=est.batch_size, patience=est.patience, callbacks=est.callbacks,
               verbose=est.verbose, net_params=net_params, seed=seed)
    return FitPlan(
        options=options,
        closed_form=not warm and (SOLVERS[options.solver].closed_form or options.closed_start),
        alphas=alphas,
        family=family,
        history=check_history(est.history, shape.n_freqs),
        warm=warm,
        seed=seed,
        train=train,
        valid=valid,
        cut=cut,
        separable_shape=separable_shape,
        folds=folds if choosing else None,
        n_blocks=n_blocks if choosing else 1,
        per_neuron=bool(est.alpha_per_neuron),
        pooling=float(est.alpha_pooling),
        rank_rule=est.rank_rule,
        model=model,
        net=net,
        on_validated=final_epochs is not None and folds is None and choosing,
    )


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
    if x_shape is not None and is_one_recording(x_shape):
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


def check_callbacks(callbacks: list | None) -> None:
    """Raise a ValueError naming the first entry of ``callbacks`` that skorch cannot use.

    skorch takes callback instances, callback classes and ``(name, callback)`` pairs. An
    ``EpochScoring`` whose scoring is a scikit-learn scorer's name is refused too: skorch
    calls it with the net's inputs (stimuli of three dimensions), which those scorers reject.
    (Their names are checked by :func:`skstrf._net.check_callback_names`.)
    """
    for i, entry in enumerate(callbacks or []):
        named = isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)
        callback = entry[1] if named else entry
        if isinstance(callback, EpochScoring) and isinstance(callback.scoring, str):
            raise ValueError(
                f"callbacks[{i}] is EpochScoring(scoring={callback.scoring!r}): skorch calls the "
                "scikit-learn scorer of that name with the net's inputs, stimuli of shape "
                "(n_stimuli, n_times, n_freqs), which scikit-learn's scorers reject. Pass a "
                "callable scoring(net, X, y) returning a number, or read the validation cc_norm "
                "every fit with validation stimuli records (history_[:, 'valid_cc_norm'])."
            )
        if isinstance(callback, Callback) or (isinstance(callback, type) and issubclass(callback, Callback)):
            continue
        raise ValueError(
            f"callbacks[{i}] is {entry!r}, which is not a skorch callback: pass instances (or "
            "classes) of skorch.callbacks.Callback, or (name, callback) pairs."
        )


#: The allowed values of the routed parameters that reach the parts of the net skstrf sets
#: up itself (its data loaders and default callbacks), checked with the estimator's
#: options (skorch and torch would take them silently, or fail deep in training).
ROUTED_CONSTRAINTS: dict[str, list] = {
    **{f"iterator_{split}__batch_size": [Interval(numbers.Integral, 1, None, closed="left")]
       for split in ("train", "valid")},
    **{f"iterator_{split}__num_workers": [Interval(numbers.Integral, 0, None, closed="left")]
       for split in ("train", "valid")},
    "iterator_train__shuffle": ["boolean"],
    "callbacks__early_stopping__patience": [Interval(numbers.Integral, 1, None, closed="left")],
    "callbacks__early_stopping__threshold": [Interval(numbers.Real, 0, None, closed="left")],
    "callbacks__early_stopping__threshold_mode": [StrOptions({"rel", "abs"})],
    "callbacks__early_stopping__lower_is_better": ["boolean"],
    "callbacks__early_stopping__load_best": ["boolean"],
    "callbacks__early_stopping__monitor": [str],
    "callbacks__stop_on_non_finite__max_growth": [Interval(numbers.Real, 1, None, closed="neither")],
}

#: Default callbacks whose settings are skstrf's own and may not be routed.
_FIXED_CALLBACKS = ("valid_cc_norm", "last_epoch")

#: The net's own callbacks that ``callbacks__<name>=None`` may switch off (skorch's way):
#: they print and time epochs, and nothing in a fit reads what they record.
SWITCHABLE_CALLBACKS = ("print_log", "epoch_timer")

#: The net's own callbacks that may be neither switched off nor replaced
#: (``callbacks__<name>=...``), and what each does for the fit.
_KEPT_CALLBACKS = {
    "train_loss": "records the training loss the fit reports and plots",
    "valid_loss": "records the validation loss the fit reports and plots",
    "valid_cc_norm": "scores the validation stimuli that early stopping and the final fit follow",
    "stop_on_non_finite": "stops a training whose loss is no longer finite",
    "early_stopping": "stops the training and restores its best epoch; set patience instead",
    "last_epoch": "keeps the last epoch's model",
    "refit": "marks the final training's epochs",
}


def check_net_params(params: dict) -> dict:
    """Return ``params`` after checking every name is routed to the net by a skorch prefix,
    and the values of those that reach the net's own parts (:data:`ROUTED_CONSTRAINTS`)."""
    unknown = sorted(key for key in params if not key.startswith(NET_PARAM_PREFIXES))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for STRFRegressor: extra keyword parameters are "
            f"passed to the skorch net and must start with one of {list(NET_PARAM_PREFIXES)}."
        )
    for key, value in sorted(params.items()):
        name = key[len("callbacks__"):] if key.startswith("callbacks__") else None
        if name in _KEPT_CALLBACKS:
            raise ValueError(
                f"parameter {key}={value!r} would {'switch off' if value is None else 'replace'} the net's "
                f"callback {name!r}, which {_KEPT_CALLBACKS[name]}; skstrf relies on it. Only "
                f"{list(SWITCHABLE_CALLBACKS)} may be switched off (e.g. callbacks__print_log=None); "
                f"route a callback's settings instead (callbacks__{name}__<setting>) where it takes them."
            )
        if name in SWITCHABLE_CALLBACKS and value is not None:
            raise ValueError(
                f"parameter {key}={value!r} would replace the net's callback {name!r}; it can only be "
                f"switched off ({key}=None). Pass another callback under a name of its own in callbacks=[...]."
            )
        if any(key.startswith(f"callbacks__{name}__") for name in _FIXED_CALLBACKS):
            raise ValueError(f"parameter {key!r} would change a callback whose settings skstrf makes "
                             "itself (from the validation stimuli, or to restore a model); it takes none.")
        constraints = ROUTED_CONSTRAINTS.get(key)
        if constraints is None:
            continue
        integral = any(isinstance(c, Interval) and c.type is numbers.Integral for c in constraints)
        if (integral and isinstance(value, (bool, np.bool_))) or not validate_value(value, constraints):
            raise ValueError(f"parameter {key}={value!r} is not allowed: it must be "
                             f"{_describe(constraints)}.")
    return params


def validate_value(value, constraints: list) -> bool:
    """Whether ``value`` satisfies one of ``constraints`` (scikit-learn's constraint objects,
    or "boolean", or a type)."""
    for constraint in constraints:
        if constraint == "boolean":
            if isinstance(value, (bool, np.bool_)):
                return True
        elif isinstance(constraint, type):
            if isinstance(value, constraint):
                return True
        elif constraint.is_satisfied_by(value):
            return True
    return False


def _describe(constraints: list) -> str:
    return " or ".join("a bool" if c == "boolean" else f"an instance of {c.__name__}" if isinstance(c, type)
                       else str(c) for c in constraints)


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


def _check_shape_options(est, shape: DataShape) -> None:
    """``n_lags`` and ``rank`` against the data's lengths and bands."""
    longest = int(shape.lengths.max())
    if est.n_lags > longest:
        raise ValueError(
            f"n_lags={est.n_lags} is longer than every stimulus: the longest has "
            f"{longest} valid frames (n_samples={longest} time samples); use "
            f"n_lags <= {longest}."
        )
    if est.lead_in >= int(shape.lengths.min()):
        s = int(np.argmin(shape.lengths))
        raise ValueError(
            f"lead_in={est.lead_in} leaves stimulus {s} no frame to fit: it has "
            f"{int(shape.lengths[s])} valid frames; use lead_in < {int(shape.lengths.min())} or "
            "give each stimulus its lead-in frames and more."
        )
    if est.kernel == "separable":
        separable_ranks(est.rank, shape.n_freqs, est.n_lags)


def separable_ranks(rank, n_freqs: int, n_lags: int) -> tuple[int, ...]:
    """The candidate ranks of a separable kernel that ``rank`` names, checked.

    Parameters
    ----------
    rank : int, "auto" or array-like of int
        The estimator's ``rank``: one rank, "auto" (:data:`skstrf._solvers.AUTO_RANKS`, those
        up to ``min(n_freqs, n_lags)``), or a grid.
    n_freqs, n_lags : int
        The kernel's bands and lags (lag-basis functions over a basis).

    Returns
    -------
    tuple of int
        Increasing, without duplicates.
    """
    max_rank = min(n_freqs, n_lags)
    if isinstance(rank, str):
        if rank != "auto":
            raise ValueError(f"rank must be a positive int, 'auto' or a sequence of them; got {rank!r}")
        return tuple(r for r in AUTO_RANKS if r <= max_rank) or (1,)
    values = np.atleast_1d(np.asarray(rank, dtype=object))
    if (values.ndim != 1 or values.size == 0
            or not all(isinstance(r, numbers.Integral) and not isinstance(r, (bool, np.bool_)) and r >= 1
                       for r in values)):
        raise ValueError(f"rank must be a positive int, 'auto' or a non-empty 1-D sequence of positive "
                         f"ints; got {rank!r}")
    ranks = tuple(sorted({int(r) for r in values}))
    if ranks[-1] > max_rank:
        raise ValueError(
            f"rank={rank!r} exceeds min(n_freqs, n_lags) = {max_rank}: a separable "
            f"kernel of rank {max_rank} is already unconstrained; use rank <= {max_rank} "
            "or kernel='vanilla'."
        )
    return ranks


def is_linear(est) -> bool:
    """Whether the model is linear and fitted by least squares: the one place that decides it.

    Only such a model has the closed-form solvers and the frame-free statistics training
    step (exact for it alone); anything else trains by gradient on forward passes.
    """
    # A fixed linear prefilter (IC adaptation) is a linear map of the stimulus: its output
    # is the design.
    fixed_prefilter = est.prefilter is None or PREFILTERS[est.prefilter].linear_map
    return est.nonlinearity == "identity" and est.loss == "mse" and fixed_prefilter


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
