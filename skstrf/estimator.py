"""STRFRegressor: the scikit-learn estimator for spectro-temporal receptive fields."""

from __future__ import annotations

import copy
import io
import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, check_random_state
from skorch.callbacks import EarlyStopping
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from .kernels import KERNELS, make_kernel
from .model import STRFModel, design_statistics
from .net import (DivergenceError, LastEpochCheckpoint, MaskedMSELoss, MaskedPoissonLoss, STRFNet,
                  StopOnNonFinite, ValidCCNorm)
from .nonlinearities import NONLINEARITIES, make_nonlinearity
from .prefilters import PREFILTERS, make_prefilter
from .validation import StimulusSet, check_responses, check_stimuli

__all__ = ["STRFRegressor"]


class STRFRegressor(RegressorMixin, BaseEstimator):
    """Spectro-temporal receptive field (STRF) model of auditory neurons: linear, LN, adapted.

    Predicts each neuron's PSTH at frame ``t`` of a stimulus from the ``n_lags`` most recent
    frames of that stimulus's spectrogram (causal, never crossing stimulus boundaries)::

        y[s, t, n] = intercept_[n] + sum_{f, k} strfs_[n, f, k] * X[s, t - k, f]

    The kernel is parameterised as a free (F, L) array ("vanilla"), a sum of ``rank``
    outer products of a frequency and a time profile ("separable"), or a sum of
    ``n_gaussians`` 2-D Gaussians ("parametric"). Training minimises the mean squared error
    to the PSTH (mean over repeats) over valid frames, each neuron in units of its PSTH
    variance, with AdamW through a skorch net; the validation stimuli drive early stopping
    on the noise-corrected correlation (cc_norm) and the best epoch is restored.

    Beyond the linear model (user guide "Beyond the linear STRF"): ``nonlinearity`` passes
    the linear output through a per-neuron static nonlinearity (an LN model) and
    ``loss="poisson"`` fits it by the Poisson likelihood; ``prefilter`` puts an adaptation
    front end (AdapTrans ON/OFF channels, or the fixed IC adaptation) before the STRF,
    fitted jointly with it; with ``P_c(X)`` channel ``c`` of the prefiltered spectrogram::

        y[s, t, n] = nonlinearity_n(intercept_[n] + sum_{c, f, k} strfs_[n, c, f, k] * P_c(X)[s, t - k, f])

    Parameters
    ----------
    kernel : {"vanilla", "separable", "parametric"}, default="vanilla"
        STRF parameterisation.
    n_lags : int, default=15
        Number of frames of history (lag 0 is the current frame).
    n_gaussians : int, default=8
        Number of Gaussians of the parametric kernel.
    rank : int, default=1
        Number of separable components of the separable kernel.
    nonlinearity : {"identity", "softplus", "exp"}, default="identity"
        Output nonlinearity applied to the linear stage, per neuron. "identity": the linear
        model. "softplus": ``s * gain * softplus(slope * z / s + offset)`` with learnable
        ``gain, slope > 0`` and ``offset`` per neuron (``s`` the neuron's PSTH standard
        deviation). "exp": ``r0 * exp(slope * (z - r0) / r0 + offset)`` with learnable
        ``slope > 0`` and ``offset`` per neuron (``r0`` the neuron's mean rate). Both start
        fitted to the closed-form linear stage (see ``init``). ``predict`` returns the
        rates; ``strfs_`` stays the linear stage. See :mod:`skstrf.nonlinearities`.
    loss : {"mse", "poisson"}, default="mse"
        Training loss. "mse": squared error to the PSTH in units of its variance.
        "poisson": Poisson deviance of the PSTH under the predicted rate, per neuron scaled
        by its mean rate over its PSTH variance (the MSE's curvature, so that ``alpha``
        means the same); needs non-negative responses and a positive output
        (``nonlinearity="softplus"`` or ``"exp"``). Models other than the linear one start
        from the closed-form STRF and fine-tune better with ``lr=1e-3`` than with the
        default (see the user guide).
    prefilter : {None, "adaptrans", "ic_adaptation"}, default=None
        Front end applied to the spectrogram before the STRF. "adaptrans": learnable ON and
        OFF adaptation channels per band (Rançon et al. 2024), rectified, fitted jointly with
        the STRF, which then has 2 input channels. "ic_adaptation": the fixed midbrain
        adaptation of Willmore et al. (2016), one channel; a fixed linear map, so a linear
        model on it keeps the closed-form solvers. See :mod:`skstrf.prefilters`.
    dt_ms : float, default=5.0
        Frame duration of the spectrogram in ms; used by ``prefilter`` only.
    freq_range : (float, float), default=(500.0, 20000.0)
        Centre frequencies in Hz of the lowest and the highest band (bands are taken evenly
        spaced on the mel scale in between); used by ``prefilter`` only, to initialise each
        band's adaptation time constant.
    solver : {"auto", "gradient", "ridge", "als"}, default="auto"
        How the kernel is fitted. "gradient": AdamW through the skorch net (any kernel).
        "ridge": closed-form ridge regression (vanilla kernel). "als": alternating least
        squares, each half-step a closed-form ridge (separable kernel). "auto" picks
        "ridge" for vanilla, "als" for separable and "gradient" for parametric. The
        closed-form solvers choose the penalty per neuron on the validation stimuli, then
        refit on all stimuli with it. They fit linear least-squares models only (IC
        adaptation included, a fixed linear prefilter): with a nonlinearity, AdapTrans or
        the Poisson loss, "auto" is "gradient" (started from the closed-form linear
        solution, see ``init``) and "ridge"/"als" raise a ValueError.
    alpha : float, array-like of float or None, default=None
        L2 penalty on the kernel weights in standardised units: the per-frame MSE of each
        neuron (in units of its PSTH variance) plus ``alpha`` times the squared norm of its
        standardised kernel. A sequence is a grid from which "ridge" and "als" choose the
        best penalty per neuron on the validation stimuli. ``None``: the grid
        ``np.logspace(-4, 2, 13)`` for "ridge" and "als" (a single 1e-3 when there is no
        validation stimulus), 0 for "gradient".
    init : {"auto", "random", "closed_form"}, default="auto"
        Starting point of gradient training. "closed_form" starts from the ridge solution
        (its rank-``rank`` SVD for separable kernels, a greedy Gaussian decomposition of
        its peaks and troughs for parametric kernels); "random" from a random draw; "auto"
        is "closed_form" for the parametric kernel and for every model that is not linear
        (a nonlinearity, AdapTrans or the Poisson loss), "random" otherwise. With AdapTrans
        the closed-form start is computed on the prefilter's initial output; from it,
        gradient training keeps each neuron's closed-form penalty and the nonlinearity
        starts fitted to the closed-form linear stage.
    lr : float, default=1e-3
        AdamW learning rate (the kernel lives in standardised units, so one value suits
        every dataset). 1e-3 gave the best test cc_norm for every kernel on the synthetic
        benchmark, from random and from closed-form starts (``benchmarks/RESULTS.md``,
        "Defaults").
    max_epochs : int, default=100
        Maximum number of passes over the training stimuli.
    batch_size : int or None, default=1
        Number of stimuli per gradient step; ``None`` uses all training stimuli at once.
    validation_fraction : float or None, default=0.15
        Fraction of the stimuli (at least one) held out for validation: the last ones, in
        the order given. ``None`` disables validation and early stopping; so does fitting a
        single stimulus or continuous recording (with a warning).
    patience : int or None, default=10
        Stop after this many epochs without improvement of the validation cc_norm;
        ``None`` trains for ``max_epochs``. In both cases the best epoch is restored.
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Torch device; "auto" picks CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds the kernel initialisation and the stimulus shuffling. Fits on CPU with the
        same integer are identical.
    verbose : int, default=0
        1 prints skorch's per-epoch table.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks passed to the skorch net (instances, or ``(name, callback)``
        pairs); skorch calls them during training as in any skorch net.
    warm_start : bool, default=False
        With gradient training, the next ``fit`` continues from the fitted model and its
        optimizer state (``history_`` grows, at most ``max_epochs`` more epochs, the current
        ``lr`` and routed parameters, validation on the new data's last stimuli) instead of
        starting anew; the model options (kernel, ``n_lags``, ...) must not change.
        Closed-form solvers have no iterations to continue: they refit from scratch.
    **net_params
        skorch-style routed parameters passed to the net, such as ``optimizer__betas``,
        ``optimizer__weight_decay``, ``iterator_train__num_workers`` or
        ``callbacks__<name>__<param>`` for a named callback. They are ordinary parameters
        of this estimator: ``get_params``, ``set_params``, ``clone`` and ``GridSearchCV``
        grids (``{"strfregressor__optimizer__betas": [...]}`` in a pipeline) handle them.
        Names must start with ``optimizer__``, ``iterator_train__``, ``iterator_valid__``
        or ``callbacks__``; any other name raises a ValueError at ``fit``.

    Attributes
    ----------
    strfs_ : ndarray of shape (n_neurons, n_freqs, n_lags) or (n_neurons, 2, n_freqs, n_lags)
        Fitted STRFs (the linear stage) in the data's units; ``strfs_[n, f, k]`` weighs band
        ``f`` ``k`` frames in the past. With ``prefilter="adaptrans"`` there is a channel
        axis: ``strfs_[n, 0]`` weighs the ON channel and ``strfs_[n, 1]`` the OFF channel
        (see :func:`skstrf.plotting.plot_strfs` to draw them side by side); with
        "ic_adaptation" the STRF weighs the adapted spectrogram.
    intercept_ : ndarray of shape (n_neurons,)
        Fitted intercepts in the data's units (of the linear stage).
    adaptation_tau_ms_ : ndarray of shape (n_channels, n_freqs)
        Only with a prefilter: the adaptation time constant of each band in ms, row 0 ON,
        row 1 OFF (AdapTrans only).
    adaptation_weight_ : ndarray of shape (n_freqs,)
        Only with a prefilter: the weight ``w`` of each band, shared by ON and OFF.
    n_features_in_ : int
        Number of frequency bands seen in ``fit``.
    n_neurons_ : int
        Number of neurons seen in ``fit``.
    n_params_per_neuron_ : int
        Trainable parameters per neuron, intercept included (511, 50 and 41 for the three
        kernels with 34 bands, 15 lags and 8 Gaussians), plus 3 with the softplus and 2
        with the exponential nonlinearity; twice the kernel's with AdapTrans (two input
        channels). The
        prefilter's own parameters are shared by all neurons and not counted
        (``3 * n_freqs`` for AdapTrans: the ON and OFF time constants and ``w`` of each
        band; none for IC adaptation).
    history_ : skorch.History
        Per epoch: ``train_loss``, ``valid_loss``, ``valid_cc_norm``, ``dur``.
    net_ : STRFNet
        The fitted skorch net holding the torch module (``net_.module_``).
    device_ : str
        The device the model lives on: the one it was trained on, or "cpu" after
        unpickling a CUDA-fitted estimator on a machine without CUDA.
    train_stimuli_, valid_stimuli_ : ndarray of int
        Indices (into the fitted X) of the training and validation stimuli.

    See Also
    --------
    skstrf.metrics.cc_norm : The score used by :meth:`score`.

    Notes
    -----
    **Bad input** is rejected by ``fit``, ``predict`` and ``score`` before any training or
    prediction, with an error naming the argument (see the user guide's catalogue). A
    band or neuron that is constant over the training frames gets a warning (the others
    are still fitted); when every band or every neuron is constant, ``fit`` raises.

    **A fit that raises leaves the estimator as it was** before the call (unfitted, or
    holding its previous fit): nothing is stored until training has settled.

    **Divergence.** When the training loss becomes non-finite, training stops. The model of
    the best validated epoch before it is restored with a :class:`RuntimeWarning`; without
    such an epoch (no validation stimuli, or divergence in the first epoch) ``fit`` raises
    :class:`~skstrf.net.DivergenceError`. A fitted estimator never holds non-finite
    ``strfs_`` or ``intercept_``.

    **Interruption** (``KeyboardInterrupt``, e.g. Ctrl-C, during gradient training): as in
    skorch, training ends and ``fit`` returns, with a :class:`UserWarning`. The estimator
    then holds the model of the best validated epoch so far or, without validation
    stimuli, of the last complete epoch; ``history_`` ends with the interrupted, incomplete
    epoch. If no epoch was complete, or the interruption came outside the training loop
    (validation, statistics, a closed-form solve), the ``KeyboardInterrupt`` propagates and
    the estimator is left as it was. A callback that raises ``KeyboardInterrupt`` in
    ``on_epoch_end`` stops training deliberately (skorch's convention), without a warning.

    **Determinism.** On CPU, fits with the same integer ``random_state`` give bit-identical
    ``strfs_``, also across processes. On CUDA the initial kernel and the stimulus order are
    the same (both are drawn on the CPU), but PyTorch does not guarantee bit-identical
    results for CUDA kernels from run to run unless ``torch.use_deterministic_algorithms``
    is on (with ``CUBLAS_WORKSPACE_CONFIG=:4096:8``), nor between CPU and CUDA: expect
    differences at float32 rounding level, which gradient training can amplify.

    Examples
    --------
    >>> from skstrf import STRFRegressor
    >>> from skstrf.datasets import make_strf_dataset
    >>> data = make_strf_dataset(n_stimuli=6, n_times=200, n_neurons=3, random_state=0)
    >>> est = STRFRegressor(max_epochs=5, random_state=0).fit(data.X, data.y)
    >>> est.strfs_.shape
    (3, 34, 15)
    >>> est.predict(data.X).shape
    (6, 200, 3)
    """

    _parameter_constraints: dict = {
        "kernel": [StrOptions(set(KERNELS))],
        "n_lags": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_gaussians": [Interval(numbers.Integral, 1, None, closed="left")],
        "rank": [Interval(numbers.Integral, 1, None, closed="left")],
        "nonlinearity": [StrOptions(set(NONLINEARITIES))],
        "loss": [StrOptions({"mse", "poisson"})],
        "prefilter": [StrOptions(set(PREFILTERS)), None],
        "dt_ms": [Interval(numbers.Real, 0, None, closed="neither")],
        "freq_range": ["array-like"],
        "solver": [StrOptions({"auto", "gradient", "ridge", "als"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left"), "array-like", None],
        "init": [StrOptions({"auto", "random", "closed_form"})],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither"), None],
        "patience": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        kernel: str = "vanilla",
        n_lags: int = 15,
        n_gaussians: int = 8,
        rank: int = 1,
        nonlinearity: str = "identity",
        loss: str = "mse",
        prefilter: str | None = None,
        dt_ms: float = 5.0,
        freq_range: tuple[float, float] = (500.0, 20000.0),
        solver: str = "auto",
        alpha: float | None = None,
        init: str = "auto",
        lr: float = 1e-3,
        max_epochs: int = 100,
        batch_size: int | None = 1,
        validation_fraction: float | None = 0.15,
        patience: int | None = 10,
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
        callbacks: list | None = None,
        warm_start: bool = False,
        **net_params,
    ) -> None:
        self.kernel = kernel
        self.n_lags = n_lags
        self.n_gaussians = n_gaussians
        self.rank = rank
        self.nonlinearity = nonlinearity
        self.loss = loss
        self.prefilter = prefilter
        self.dt_ms = dt_ms
        self.freq_range = freq_range
        self.solver = solver
        self.alpha = alpha
        self.init = init
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.warm_start = warm_start
        # Kept in one private dict (scikit-learn allows no other public attribute in
        # __init__); get_params lists them, so clone and repr see them. Validated at fit.
        self._net_kwargs = dict(net_params)

    def _net_params(self) -> dict:
        """The skorch-routed parameters (``optimizer__...``) given to __init__ or set_params."""
        return dict(self._net_kwargs)

    def get_params(self, deep: bool = True) -> dict:
        """Get the parameters of this estimator, the routed ``optimizer__...`` ones included.

        Parameters
        ----------
        deep : bool, default=True
            As in scikit-learn (no parameter of this estimator holds a sub-estimator).

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        params.update(self._net_params())
        return params

    def set_params(self, **params) -> "STRFRegressor":
        """Set parameters, the routed ``optimizer__...`` and ``callbacks__...`` ones included.

        Parameters
        ----------
        **params
            Parameter names and their new values.

        Returns
        -------
        self : STRFRegressor
        """
        # skorch's prefixes win over scikit-learn's nesting: "callbacks__x" addresses a
        # named skorch callback, not a sub-estimator held in the ``callbacks`` list.
        routed = {key: params.pop(key) for key in list(params)
                  if key.startswith(NET_PARAM_PREFIXES) or key in self._net_kwargs}
        # A new dict: an estimator cloned from this one must not see the change.
        self._net_kwargs = {**self._net_kwargs, **routed}
        return super().set_params(**params) if params else self

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y) -> "STRFRegressor":
        """Fit the STRFs.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Stimulus spectrograms; stimuli of different lengths NaN-padded at the end.
        y : array-like of shape (n_stimuli, n_times, n_neurons, n_repeats)
            Responses; the neuron and repeats axes are optional (``y.ndim - X.ndim`` is
            -1, 0 or +1), missing repeats are NaN, padding frames are NaN as in X.

        Returns
        -------
        self : STRFRegressor
            The fitted estimator.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None; "
                "pass responses of shape (n_stimuli, n_times, n_neurons, n_repeats)."
            )
        net_params = _check_net_params(self._net_params())
        device = _resolve_device(self.device)
        self._check_model_options()
        data = check_responses(y, self._validate_stimuli(X, reset=True))
        if self.loss == "poisson":
            _check_non_negative(data.y)
        longest = int(data.lengths.max())
        if self.n_lags > longest:
            raise ValueError(
                f"n_lags={self.n_lags} is longer than every stimulus: the longest has "
                f"{longest} valid frames (n_samples={longest} time samples); use "
                f"n_lags <= {longest}."
            )
        max_rank = min(data.X.shape[2], self.n_lags)
        if self.kernel == "separable" and self.rank > max_rank:
            raise ValueError(
                f"rank={self.rank} exceeds min(n_freqs, n_lags) = {max_rank}: a separable "
                f"kernel of rank {max_rank} is already unconstrained; use rank <= {max_rank} "
                "or kernel='vanilla'."
            )
        # A closed-form solution does not depend on where it starts: only gradient training
        # has a state to continue.
        warm = self.warm_start and hasattr(self, "net_") and self._resolve_solver() == "gradient"
        if warm and (data.X.shape[2] != self.n_features_in_ or data.y.shape[2] != self.n_neurons_):
            raise ValueError(
                "warm_start=True needs the same number of frequency bands and neurons as the "
                f"previous fit ({self.n_features_in_} and {self.n_neurons_}); got "
                f"{data.X.shape[2]} and {data.y.shape[2]}."
            )
        train_idx, valid_idx = self._split(data.n_stimuli)
        train = data.subset(train_idx)
        valid = data.subset(valid_idx) if valid_idx.size else None
        _check_variation(train)
        solver = self._resolve_solver()
        alphas = self._penalties(solver, has_valid=valid is not None)
        closed_form = not warm and (solver != "gradient" or self._resolve_init() == "closed_form")
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self._build_net(train, valid, device, seed, alphas, net_params,
                                  previous=self.net_ if warm else None)
            scales = _module_scales(net.module_)
            fast = self._is_linear()
            train_stats = None
            if closed_form or fast:
                train_stats = design_statistics(*_design_tensors(net.module_, train, device),
                                                self.n_lags, *scales)
            alpha_ = None
            if closed_form:
                valid_stats = None if valid is None else design_statistics(
                    *_design_tensors(net.module_, valid, device), self.n_lags, *scales)
                alpha_ = self._solve_closed_form(net.module_, solver, alphas, train_stats, valid_stats)
                if not fast:
                    # Gradient training keeps each neuron's closed-form penalty, and the
                    # nonlinearity starts fitted to the closed-form linear stage.
                    net.alpha = alpha_.astype(np.float32)
                    _calibrate_nonlinearity(net.module_, train, device, self.loss)
            elif warm and not fast:
                net.alpha = self.net_.alpha  # continue with the first fit's penalties
            if solver == "gradient":
                alpha_ = np.full(data.y.shape[2], net.alpha)
                net.statistics = train_stats if fast else None
                try:
                    net.partial_fit(_net_inputs(train, device), _net_targets(train, device))
                finally:
                    net.statistics = None
                self._settle_training(net)
            else:
                _record_closed_form_epoch(net, train_stats, valid, device)
        # Nothing below may store a non-finite model: raise before any attribute is set.
        _check_finite_model(net.module_, self.lr)

        self.net_ = net
        self.history_ = net.history
        self.device_ = device
        self.solver_ = solver
        self.alpha_ = alpha_
        self.train_stimuli_, self.valid_stimuli_ = train_idx, valid_idx
        self._y_layout = data.y_layout
        self.n_features_in_ = data.X.shape[2]
        self.n_neurons_ = data.y.shape[2]
        with torch.no_grad():
            module = net.module_
            strfs = module.strf()
            self.strfs_ = (strfs[:, 0] if strfs.shape[1] == 1 else strfs).cpu().numpy().astype(np.float64)
            self.intercept_ = module.intercept().cpu().numpy().astype(np.float64)
            self.__dict__.pop("adaptation_tau_ms_", None)
            self.__dict__.pop("adaptation_weight_", None)
            if module.prefilter is not None:
                self.adaptation_tau_ms_ = module.prefilter.tau_ms.cpu().numpy().astype(np.float64)
                self.adaptation_weight_ = module.prefilter.w.cpu().numpy().astype(np.float64)
        # The prefilter's parameters are shared by all neurons, so they are not per-neuron.
        self.n_params_per_neuron_ = sum(
            p.numel() for name, p in module.named_parameters() if not name.startswith("prefilter.")
        ) // self.n_neurons_
        return self

    def _check_model_options(self) -> None:
        """Reject inconsistent combinations of the model's options before any work."""
        if self.loss == "poisson" and self.nonlinearity == "identity":
            raise ValueError(
                "loss='poisson' needs a positive predicted rate, which nonlinearity='identity' "
                "does not guarantee; use nonlinearity='softplus' or 'exp' (or loss='mse')."
            )
        if self.prefilter is not None:
            from .prefilters import _check_freq_range

            _check_freq_range(self.freq_range)

    def _split(self, n_stimuli: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of training and validation stimuli (validation = the last ones)."""
        if self.validation_fraction is None:
            return np.arange(n_stimuli), np.arange(0)
        if n_stimuli < 2:
            warnings.warn(
                "only one stimulus (or one continuous recording) was given, so no stimulus "
                "can be held out for validation: training for max_epochs without early "
                "stopping. Pass several stimuli, or validation_fraction=None to silence this.",
                UserWarning,
                stacklevel=3,
            )
            return np.arange(n_stimuli), np.arange(0)
        n_valid = min(max(1, int(round(self.validation_fraction * n_stimuli))), n_stimuli - 1)
        return np.arange(n_stimuli - n_valid), np.arange(n_stimuli - n_valid, n_stimuli)

    def _build_net(self, train: StimulusSet, valid: StimulusSet | None, device: str,
                   seed: int, alphas: np.ndarray, net_params: dict,
                   previous: STRFNet | None = None) -> STRFNet:
        """A new net for this fit; with ``previous`` (warm start) it continues that net's
        model, optimizer state and history, with this fit's validation data and parameters."""
        prefilter = make_prefilter(self.prefilter, train.X.shape[2], dt_ms=float(self.dt_ms),
                                   freq_range=self.freq_range)
        # Standardise what the linear stage sees: the prefilter's initial output, if any.
        stimuli = train.X if prefilter is None else _prefiltered(prefilter, train)
        x_mean, x_scale = _masked_moments(stimuli, train.frame_mask)
        y_mean, y_scale = _masked_moments(train.psth(), train.frame_mask)
        if previous is not None:
            # The continued model keeps its own units, and the loss weights follow them.
            y_mean, y_scale = (previous.module_.y_mean.double().cpu().numpy(),
                               previous.module_.y_scale.double().cpu().numpy())
        generator = torch.Generator().manual_seed(seed)
        n_channels = 1 if prefilter is None else prefilter.n_channels
        kernel = make_kernel(self.kernel, train.y.shape[2], n_channels, train.X.shape[2], self.n_lags,
                             rank=self.rank, n_gaussians=self.n_gaussians, generator=generator)
        module = STRFModel(kernel, *(torch.as_tensor(a) for a in (x_mean, x_scale, y_mean, y_scale)),
                           prefilter=prefilter,
                           nonlinearity=make_nonlinearity(self.nonlinearity, y_mean, y_scale))
        if previous is not None:
            _load_previous_module(module, previous.module_)
        callbacks = [("stop_on_non_finite", StopOnNonFinite())]
        train_split = None
        if valid is not None:
            from .metrics import signal_power

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sp = signal_power(valid.y) if valid.y.shape[3] > 1 else np.full(valid.y.shape[2], np.nan)
            psth = valid.psth()
            # Without repeats the noise correction is undefined: score by plain cc instead.
            sp = np.where(np.isfinite(sp), sp, np.nanvar(psth, axis=(0, 1)))
            callbacks.insert(0, ("valid_cc_norm", ValidCCNorm(psth, sp)))
            callbacks.append(("early_stopping", EarlyStopping(
                monitor="valid_cc_norm", lower_is_better=False,
                patience=self.patience if self.patience is not None else self.max_epochs + 1,
                threshold=1e-4, threshold_mode="abs", load_best=True, sink=_silent)))
            train_split = predefined_split(
                Dataset(_net_inputs(valid, device), _net_targets(valid, device)))
        callbacks.append(("last_epoch", LastEpochCheckpoint()))
        n_train = train.n_stimuli
        batch_size = n_train if self.batch_size is None else min(self.batch_size, n_train)
        if self.loss == "poisson":
            # The deviance's curvature in the rate is about 2 / mean rate; scaling by
            # mean / variance gives it the curvature of the standardised MSE, so that every
            # neuron counts alike and alpha means the same for both losses.
            criterion = MaskedPoissonLoss
            weight = np.where(y_mean > 0, y_mean, y_scale) / y_scale**2
        else:
            criterion, weight = MaskedMSELoss, 1.0 / y_scale**2
        net = STRFNet(
            module,
            criterion=criterion,
            criterion__weight=torch.as_tensor(weight, dtype=torch.float32),
            optimizer=torch.optim.AdamW,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            callbacks=callbacks + list(self.callbacks or []),
            device=device,
            verbose=self.verbose,
            alpha=float(alphas[0]) if alphas.size == 1 else 0.0,
            **{"optimizer__weight_decay": 0.0, "iterator_train__shuffle": True, **net_params},
        )
        net.initialize()
        if previous is not None:
            _continue_training_state(net, previous)
        return net

    def _is_linear(self) -> bool:
        """Whether the model is linear and fitted by least squares.

        The one place that decides it. Only such a model has the closed-form solvers and
        the frame-free statistics training step (exact for it alone); anything else
        trains by gradient on forward passes.
        """
        # The fixed IC adaptation is a linear map of the stimulus: its output is the design.
        fixed_prefilter = self.prefilter is None or self.prefilter == "ic_adaptation"
        return self.nonlinearity == "identity" and self.loss == "mse" and fixed_prefilter

    def _resolve_solver(self) -> str:
        compatible = {"ridge": "vanilla", "als": "separable"}
        if not self._is_linear():
            if self.solver in compatible:
                raise ValueError(
                    f"solver={self.solver!r} fits linear least-squares models only, but "
                    f"nonlinearity={self.nonlinearity!r}, loss={self.loss!r}, "
                    f"prefilter={self.prefilter!r}; use solver='gradient' or 'auto' (which "
                    "starts gradient training from the closed-form linear solution)."
                )
            return "gradient"
        if self.solver == "auto":
            return {"vanilla": "ridge", "separable": "als"}.get(self.kernel, "gradient")
        if self.solver in compatible and compatible[self.solver] != self.kernel:
            raise ValueError(
                f"solver={self.solver!r} fits the {compatible[self.solver]!r} kernel only, but "
                f"kernel={self.kernel!r}; use solver='gradient' or 'auto'."
            )
        return self.solver

    def _resolve_init(self) -> str:
        if self.init == "auto":
            return "closed_form" if self.kernel == "parametric" or not self._is_linear() else "random"
        return self.init

    def _penalties(self, solver: str, has_valid: bool) -> np.ndarray:
        """The penalty grid (1-D, non-empty) this fit uses."""
        if self.alpha is None:
            if solver == "gradient" and self._resolve_init() != "closed_form":
                return np.zeros(1)
            return DEFAULT_ALPHAS.copy() if has_valid else np.array([1e-3])
        alphas = np.atleast_1d(np.asarray(self.alpha, dtype=np.float64))
        if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
            raise ValueError(
                f"alpha must be a non-negative float or a non-empty 1-D sequence of them; got {self.alpha!r}"
            )
        if alphas.size > 1 and solver == "gradient":
            raise ValueError(
                f"solver='gradient' trains with a single penalty, but alpha has {alphas.size} values; "
                "search a grid with GridSearchCV, or use solver='ridge'/'als'."
            )
        if alphas.size > 1 and not has_valid:
            raise ValueError(
                "choosing alpha from a grid needs validation stimuli, but none is held out "
                "(validation_fraction=None or a single stimulus); pass a single alpha."
            )
        return alphas

    def _solve_closed_form(self, module: STRFModel, solver: str, alphas: np.ndarray,
                           train_stats, valid_stats) -> np.ndarray:
        """Set ``module`` to the closed-form solution; return the penalty per neuron."""
        from . import solvers

        N, C, F, L = module.kernel.shape
        grid = torch.as_tensor(alphas, dtype=torch.float64, device=train_stats.gram.device)
        train_m = solvers.moments(train_stats)
        refit_m = train_m if valid_stats is None else solvers.moments(_concat_stats(train_stats, valid_stats))
        weight, _, chosen, _ = solvers.fit_ridge(train_m, valid_stats, grid, refit=refit_m)
        _check_finite_solution(weight, alphas)
        if self.kernel == "separable" and solver == "als":
            if valid_stats is not None and grid.numel() > 1:
                path = solvers.ridge_path(train_m, grid)  # (A, D, N)
                _check_finite_solution(path, alphas)  # ALS's SVD would fail on it
                start = path.transpose(1, 2).reshape(-1, F, L)
                fitted = solvers.fit_als(train_m, start, grid.repeat_interleave(N), F, L, self.rank)
                fitted = fitted.reshape(grid.numel(), N, F * L).transpose(1, 2)
                scores = solvers.validation_correlation(fitted, solvers.intercept(train_m, fitted), valid_stats)
                chosen = grid[solvers._best_per_neuron(scores, grid)]
                weight = solvers.ridge_path(refit_m, chosen[None])[0]
            weight = solvers.fit_als(refit_m, weight.T.reshape(N, F, L), chosen, F, L, self.rank)
            weight = weight.reshape(N, F * L).T
            _check_finite_solution(weight, alphas)
        with torch.no_grad():
            module.kernel.set_weight(weight.T.reshape(N, C, F, L).to(module.bias))
            actual = module.standardized_weight().double().T
            module.bias.copy_(solvers.intercept(refit_m, actual).to(module.bias))
        return chosen.cpu().numpy()

    def _settle_training(self, net: STRFNet) -> None:
        """Settle the model after a divergence or an interruption of gradient training.

        skorch ends training on both as if it were complete; here the model is set to the
        best validated epoch of this run (early stopping has already restored it) or, after
        an interruption without one, to the last complete epoch, with a warning. When no
        such epoch exists, :class:`DivergenceError` or ``KeyboardInterrupt`` is raised
        before the estimator stores anything, so it keeps its previous state.
        """
        callbacks = dict(net.callbacks_)
        early = callbacks.get("early_stopping")
        # skorch's EarlyStopping reports best_epoch_ = 0 until an epoch improves.
        validated = early is not None and early.best_model_weights_ is not None
        best = early.best_epoch_ if validated else None
        diverged = callbacks["stop_on_non_finite"].diverged_epoch_
        interrupted = getattr(net, "interrupted_epoch_", None)
        if diverged is not None:
            if best is None:
                raise DivergenceError(
                    f"training diverged: the training loss became non-finite at epoch "
                    f"{diverged} and no earlier epoch has a finite validation score to fall "
                    f"back to (or no stimulus is held out); the estimator was not updated. "
                    f"Lower lr (now {self.lr}) or rescale X and y."
                )
            warnings.warn(
                f"training diverged at epoch {diverged} (non-finite loss); the model of the "
                f"best finite epoch ({best}) was restored. Consider a lower lr (now {self.lr}).",
                RuntimeWarning,
                stacklevel=4,
            )
        elif interrupted is not None:
            last = callbacks["last_epoch"]
            if best is None and last.epoch_ is None:
                raise KeyboardInterrupt(
                    f"fit interrupted during epoch {interrupted}, before any epoch completed; "
                    "the estimator was left as it was before this fit."
                )
            if best is None:
                net.module_.load_state_dict(last.state_)
            kept = (f"best validated epoch ({best})" if best is not None
                    else f"last complete epoch ({last.epoch_})")
            warnings.warn(
                f"fit interrupted (KeyboardInterrupt) during epoch {interrupted}; keeping the "
                f"model of the {kept}. history_ ends with the incomplete epoch.",
                UserWarning,
                stacklevel=4,
            )
        elif early is not None and best is None:
            warnings.warn(
                "the validation cc_norm was undefined (NaN) at every epoch (signal power not "
                "positive for any neuron on the validation stimuli, or constant predictions), "
                "so early stopping could not select an epoch: keeping the last one. Hold out "
                "more or longer stimuli, or pass validation_fraction=None.",
                UserWarning,
                stacklevel=4,
            )

    # -------------------------------------------------------------- predict
    def predict(self, X) -> np.ndarray:
        """Predict the PSTH of every neuron.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Stimuli, NaN-padded at the end.

        Returns
        -------
        y_pred : ndarray
            y's fitted layout without the repeats axis: (n_stimuli, n_times, n_neurons) for
            3-D X, (n_times, n_neurons) for 2-D X, without the neuron axis when y had none.
            NaN on padding frames.
        """
        check_is_fitted(self, "net_")
        data = self._validate_stimuli(X, reset=False)
        pred = self._predict_stimuli(data)
        return self._to_user_layout(pred, data.x_ndim)

    def _validate_stimuli(self, X, *, reset: bool) -> StimulusSet:
        """:func:`check_stimuli`; with ``reset=False`` (predict, score) also the number of bands.

        The band check is worded as scikit-learn words it, naming the estimator.
        """
        data = check_stimuli(X)
        if not reset and data.X.shape[2] != self.n_features_in_:
            raise ValueError(
                f"X has {data.X.shape[2]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (frequency bands, the last axis "
                "of X)."
            )
        return data

    def _predict_stimuli(self, data: StimulusSet) -> np.ndarray:
        """Predictions of shape (n_stimuli, n_times, n_neurons), NaN on padding."""
        pred = self.net_.predict(_net_inputs(data, self.device_)).astype(np.float64)
        pred[~data.frame_mask] = np.nan
        return pred

    def _to_user_layout(self, pred: np.ndarray, x_ndim: int) -> np.ndarray:
        if x_ndim == 2:
            pred = pred[0]
        if self._y_layout == "neuron":
            pred = pred[..., 0]
        return pred

    def score(self, X, y, sample_weight=None) -> float:
        """Mean noise-corrected correlation (cc_norm) over neurons, NaN-aware.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Stimuli.
        y : array-like
            Responses in the layout used for ``fit``; with a repeats axis the score is
            cc_norm (Schoppe et al. 2016), without one it falls back to cc with a warning.
        sample_weight : None
            Not supported; present for scikit-learn compatibility.

        Returns
        -------
        score : float
        """
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by STRFRegressor.score")
        from .metrics import cc_norm

        check_is_fitted(self, "net_")
        data = check_responses(y, self._validate_stimuli(X, reset=False))
        if data.y.shape[2] != self.n_neurons_:
            raise ValueError(
                f"y has {data.y.shape[2]} neuron(s), but this estimator was fitted with "
                f"{self.n_neurons_} (n_neurons_ = {self.n_neurons_}); score the neurons it was "
                "fitted on, in the same order."
            )
        pred = self._predict_stimuli(data)
        return float(cc_norm(data.y, pred))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        # NaN is accepted only as whole end-padding frames, not as missing values anywhere:
        # scikit-learn's allow_nan means the latter, so the estimator rejects stray NaN and
        # the checks verify it does.
        tags.input_tags.allow_nan = False
        return tags

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        if "net_" not in state:
            return state
        # torch.save tags every tensor reachable from the state (module, optimizer, callback
        # caches, the validation set) with its device, and torch.load's map_location then
        # moves them all at once: a model fitted on CUDA unpickles on a CPU-only machine.
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return {"_torch_state": buffer.getvalue()}

    def __setstate__(self, state: dict) -> None:
        if "_torch_state" in state:
            to_cpu = not torch.cuda.is_available()
            state = torch.load(io.BytesIO(state["_torch_state"]), weights_only=False,
                               map_location="cpu" if to_cpu else None)
            if to_cpu:
                # skorch has moved the net to the CPU (with a warning); predict follows it.
                state["device_"] = "cpu"
        super().__setstate__(state)


DEFAULT_ALPHAS = np.logspace(-4, 2, 13)


def _concat_stats(a, b):
    """Statistics of the stimuli of ``a`` followed by those of ``b``."""
    return type(a)(*(torch.cat([x, y]) for x, y in zip(
        (a.gram, a.cross, a.sq, a.count), (b.gram, b.cross, b.sq, b.count))))


def _record_closed_form_epoch(net: STRFNet, train_stats, valid: StimulusSet | None, device: str) -> None:
    """Write a one-epoch history for a closed-form fit (losses and validation cc_norm)."""
    net.history.new_epoch()
    net.history.record("epoch", 1)
    with torch.no_grad():
        index = torch.arange(train_stats.gram.shape[0])
        net.history.record("train_loss", float(net.module_.statistics_loss(train_stats, index)))
        if valid is not None:
            pred = net.forward(_net_inputs(valid, device), training=False)
            net.history.record("valid_loss", float(net.get_loss(pred, _net_targets(valid, device))))
            scorer = dict(net.callbacks_)["valid_cc_norm"]
            net.history.record("valid_cc_norm", scorer.score(pred))


# skorch's routing prefixes that STRFRegressor passes through to its net.
NET_PARAM_PREFIXES = ("optimizer__", "iterator_train__", "iterator_valid__", "callbacks__")


def _check_net_params(params: dict) -> dict:
    """Return ``params`` after checking every name is routed to the net by a skorch prefix."""
    unknown = sorted(key for key in params if not key.startswith(NET_PARAM_PREFIXES))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for STRFRegressor: extra keyword parameters are "
            f"passed to the skorch net and must start with one of {list(NET_PARAM_PREFIXES)}."
        )
    return params


def _load_previous_module(module: torch.nn.Module, previous: torch.nn.Module) -> None:
    """Copy a fitted module's parameters and buffers into a new one of the same structure."""
    try:
        module.load_state_dict(previous.state_dict())
    except RuntimeError as exc:
        raise ValueError(
            "warm_start=True continues the previous model, but kernel, n_lags, rank, "
            "n_gaussians, nonlinearity or prefilter changed since the previous fit; set them "
            "back, or fit with warm_start=False."
        ) from exc


def _continue_training_state(net: STRFNet, previous: STRFNet) -> None:
    """Carry the optimizer's running state and the history of ``previous`` over to ``net``.

    Only the per-parameter state (e.g. AdamW's moments) is carried: the hyperparameters
    (lr, routed ``optimizer__`` values) are this fit's. Both are deep copies, so a fit that
    fails leaves the previous net exactly as it was.
    """
    state = net.optimizer_.state_dict()
    state["state"] = copy.deepcopy(previous.optimizer_.state_dict()["state"])
    net.optimizer_.load_state_dict(state)
    net.history_ = copy.deepcopy(previous.history_)


def _silent(*args, **kwargs) -> None:
    """skorch sink that prints nothing (the epoch table already shows progress)."""


def _resolve_device(device: str) -> str:
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


def _masked_moments(a: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``a`` (S, T, K) over valid frames, per last-axis entry.

    A constant entry gets scale 1 so that it stays constant instead of dividing by zero.
    """
    values = a[mask]
    mean = values.mean(axis=0)
    scale = values.std(axis=0)
    scale = np.where(_is_flat(mean, scale), 1.0, scale)
    return mean, scale


def _check_finite_solution(weight: torch.Tensor, alphas: np.ndarray) -> None:
    """Raise a clear error when a closed-form solve produced non-finite weights."""
    if not bool(torch.isfinite(weight).all()):
        raise ValueError(
            f"the closed-form solution with alpha={alphas.tolist()} is not finite: with "
            "alpha=0 least squares has no unique solution when the lagged design is singular "
            "(constant or duplicated bands, or fewer valid training frames than "
            "n_freqs * n_lags + 1 parameters). Use alpha > 0 (or the default grid)."
        )


def _is_flat(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """True where a standard deviation is numerically zero next to its mean (rounding only)."""
    return ~(std > 1e-12 * np.maximum(np.abs(mean), 1.0))


def _flat_columns(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Boolean array of shape (K,): entries of ``a`` (S, T, K) constant over the valid frames."""
    values = a[mask]
    return _is_flat(values.mean(axis=0), values.std(axis=0))


def _check_variation(train: StimulusSet) -> None:
    """Reject training data with nothing to fit; warn about constant bands and neurons.

    A constant band or neuron is legal (a dead channel, a silent unit among many) and the
    others are still fitted, so it gets a warning; when every band or every neuron is
    constant an STRF has nothing to explain, which is an error.
    """
    flat_x = _flat_columns(train.X, train.frame_mask)
    flat_y = _flat_columns(train.psth(), train.frame_mask)
    if flat_x.all():
        raise ValueError(
            f"X is constant over the {int(train.lengths.sum())} training frames in every one of "
            f"its {flat_x.size} frequency band(s) (standard deviation <= 1e-12 * max(|mean|, 1)): "
            "a stimulus that does not vary cannot drive an STRF. Check that X holds the "
            "spectrograms, and rescale X if its values are that small."
        )
    if flat_y.all():
        raise ValueError(
            f"y is constant over the training frames for every one of its {flat_y.size} "
            "neuron(s) (e.g. all zero): there is no response for an STRF to explain. Check the "
            "responses (units, binning, the selection of neurons)."
        )
    if flat_x.any():
        warnings.warn(
            f"X is constant over the training frames in frequency band(s) "
            f"{np.flatnonzero(flat_x).tolist()}: they carry no stimulus information, and their "
            "STRF weights are not tuning: they only see stimulus onsets (the zero history before "
            "each stimulus), and gradient training leaves their lag-0 weight where it started.",
            UserWarning,
            stacklevel=4,
        )
    if flat_y.any():
        warnings.warn(
            f"y is constant over the training frames for neuron(s) "
            f"{np.flatnonzero(flat_y).tolist()} (zero variance): there is no response for their "
            "STRF to explain, and cc / cc_norm are undefined (NaN) for a constant response.",
            UserWarning,
            stacklevel=4,
        )


def _check_finite_model(module: STRFModel, lr: float) -> None:
    """Raise DivergenceError if the fitted STRFs or intercepts are not finite."""
    with torch.no_grad():
        finite = bool(torch.isfinite(module.strf()).all() and torch.isfinite(module.intercept()).all())
    if not finite:
        raise DivergenceError(
            "the fitted model has non-finite STRF or intercept values; the estimator was "
            f"not updated. Lower lr (now {lr}), set alpha > 0, or rescale X and y."
        )


def _module_scales(module: STRFModel) -> tuple[torch.Tensor, ...]:
    return module.x_mean, module.x_scale, module.y_mean, module.y_scale


def _zero_filled(data: StimulusSet) -> np.ndarray:
    return np.nan_to_num(data.X, nan=0.0).astype(np.float32)


def _to_tensors(data: StimulusSet, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-filled stimuli, PSTH and frame mask as float32 tensors on ``device``."""
    return (
        torch.as_tensor(_zero_filled(data), device=device),
        torch.as_tensor(data.psth(), dtype=torch.float32, device=device),
        torch.as_tensor(data.frame_mask, dtype=torch.float32, device=device),
    )


def _prefiltered(prefilter: torch.nn.Module, data: StimulusSet) -> np.ndarray:
    """The prefilter's output on ``data``'s stimuli (S, T, C * F) as float64, on the CPU."""
    with torch.no_grad():
        return prefilter(torch.as_tensor(_zero_filled(data))).numpy().astype(np.float64)


def _design_tensors(module: STRFModel, data: StimulusSet, device: str) -> tuple[torch.Tensor, ...]:
    """What the linear stage sees (the prefilter's output, if any), the PSTH and the mask."""
    X, P, mask = _to_tensors(data, device)
    if module.prefilter is not None:
        with torch.no_grad():
            X = module.prefilter(X)
    return X, P, mask


def _calibrate_nonlinearity(module: STRFModel, data: StimulusSet, device: str, loss: str) -> None:
    """Fit the output nonlinearity's own parameters to ``data`` with the linear stage fixed."""
    calibrate = getattr(module.nonlinearity, "calibrate_", None)
    if calibrate is None:
        return
    X, P, mask = _to_tensors(data, device)
    with torch.no_grad():
        z = module.linear(X)
    valid = mask.bool()
    calibrate(z[valid], P[valid], loss)


def _check_non_negative(y: np.ndarray) -> None:
    """Raise if responses ``y`` (S, T, N, R) have a negative value (Poisson loss)."""
    negative = y < 0  # NaN compares False
    if negative.any():
        s, t, n, r = np.argwhere(negative)[0]
        raise ValueError(
            f"loss='poisson' needs non-negative responses (spike counts or rates), but y has "
            f"{int(negative.sum())} negative value(s), the first {y[s, t, n, r]:g} at stimulus "
            f"{s}, frame {t}, neuron {n}, repeat {r}; use loss='mse' for signed responses."
        )


def _net_inputs(data: StimulusSet, device: str) -> dict[str, torch.Tensor]:
    return {
        "X": torch.as_tensor(_zero_filled(data), device=device),
        "index": torch.arange(data.n_stimuli, device=device),
    }


def _net_targets(data: StimulusSet, device: str) -> torch.Tensor:
    return torch.as_tensor(data.psth(), dtype=torch.float32, device=device)
