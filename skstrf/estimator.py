"""STRFRegressor: the scikit-learn estimator for spectro-temporal receptive fields."""

from __future__ import annotations

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
from .net import DivergenceError, MaskedMSELoss, STRFNet, StopOnNonFinite, ValidCCNorm
from .validation import StimulusSet, check_responses, check_stimuli

__all__ = ["STRFRegressor"]


class STRFRegressor(RegressorMixin, BaseEstimator):
    """Linear spectro-temporal receptive field (STRF) model of auditory neurons.

    Predicts each neuron's PSTH at frame ``t`` of a stimulus from the ``n_lags`` most recent
    frames of that stimulus's spectrogram (causal, never crossing stimulus boundaries)::

        y[s, t, n] = intercept_[n] + sum_{f, k} strfs_[n, f, k] * X[s, t - k, f]

    The kernel is parameterised as a free (F, L) array ("vanilla"), a sum of ``rank``
    outer products of a frequency and a time profile ("separable"), or a sum of
    ``n_gaussians`` 2-D Gaussians ("parametric"). Training minimises the mean squared error
    to the PSTH (mean over repeats) over valid frames, each neuron in units of its PSTH
    variance, with AdamW through a skorch net; the validation stimuli drive early stopping
    on the noise-corrected correlation (cc_norm) and the best epoch is restored.

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
    solver : {"auto", "gradient", "ridge", "als"}, default="auto"
        How the kernel is fitted. "gradient": AdamW through the skorch net (any kernel).
        "ridge": closed-form ridge regression (vanilla kernel). "als": alternating least
        squares, each half-step a closed-form ridge (separable kernel). "auto" picks
        "ridge" for vanilla, "als" for separable and "gradient" for parametric. The
        closed-form solvers choose the penalty per neuron on the validation stimuli, then
        refit on all stimuli with it.
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
        is "closed_form" for the parametric kernel and "random" otherwise.
    lr : float, default=1e-2
        AdamW learning rate.
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
        Extra callbacks passed to the skorch net.
    warm_start : bool, default=False
        Continue training the fitted model on the next ``fit`` call instead of starting anew.

    Attributes
    ----------
    strfs_ : ndarray of shape (n_neurons, n_freqs, n_lags)
        Fitted STRFs in the data's units; ``strfs_[n, f, k]`` weighs band ``f`` ``k`` frames
        in the past.
    intercept_ : ndarray of shape (n_neurons,)
        Fitted intercepts in the data's units.
    n_features_in_ : int
        Number of frequency bands seen in ``fit``.
    n_neurons_ : int
        Number of neurons seen in ``fit``.
    n_params_per_neuron_ : int
        Trainable parameters per neuron, intercept included (511, 50 and 41 for the three
        kernels with 34 bands, 15 lags and 8 Gaussians).
    history_ : skorch.History
        Per epoch: ``train_loss``, ``valid_loss``, ``valid_cc_norm``, ``dur``.
    net_ : STRFNet
        The fitted skorch net holding the torch module (``net_.module_``).
    device_ : str
        The device the model was trained on.
    train_stimuli_, valid_stimuli_ : ndarray of int
        Indices (into the fitted X) of the training and validation stimuli.

    See Also
    --------
    skstrf.metrics.cc_norm : The score used by :meth:`score`.

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
        solver: str = "auto",
        alpha: float | None = None,
        init: str = "auto",
        lr: float = 1e-2,
        max_epochs: int = 100,
        batch_size: int | None = 1,
        validation_fraction: float | None = 0.15,
        patience: int | None = 10,
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
        callbacks: list | None = None,
        warm_start: bool = False,
    ) -> None:
        self.kernel = kernel
        self.n_lags = n_lags
        self.n_gaussians = n_gaussians
        self.rank = rank
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
        device = _resolve_device(self.device)
        data = check_responses(y, check_stimuli(X))
        longest = int(data.lengths.max())
        if self.n_lags > longest:
            raise ValueError(
                f"n_lags={self.n_lags} is longer than every stimulus (the longest has "
                f"{longest} valid frames); use n_lags <= {longest}."
            )
        warm = self.warm_start and hasattr(self, "net_")
        if warm and (data.X.shape[2] != self.n_features_in_ or data.y.shape[2] != self.n_neurons_):
            raise ValueError(
                "warm_start=True needs the same number of frequency bands and neurons as the "
                f"previous fit ({self.n_features_in_} and {self.n_neurons_}); got "
                f"{data.X.shape[2]} and {data.y.shape[2]}."
            )
        train_idx, valid_idx = self._split(data.n_stimuli)
        train = data.subset(train_idx)
        valid = data.subset(valid_idx) if valid_idx.size else None
        solver = self._resolve_solver()
        alphas = self._penalties(solver, has_valid=valid is not None)
        closed_form = not warm and (solver != "gradient" or self._resolve_init() == "closed_form")
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self.net_ if warm else self._build_net(train, valid, device, seed, alphas)
            scales = _module_scales(net.module_)
            train_stats = design_statistics(*_to_tensors(train, device), self.n_lags, *scales)
            alpha_ = None
            if closed_form:
                valid_stats = None if valid is None else design_statistics(
                    *_to_tensors(valid, device), self.n_lags, *scales)
                alpha_ = self._solve_closed_form(net.module_, solver, alphas, train_stats, valid_stats)
            if solver == "gradient":
                alpha_ = np.full(data.y.shape[2], net.alpha)
                net.statistics = train_stats
                try:
                    net.partial_fit(_net_inputs(train, device), _net_targets(train, device))
                finally:
                    net.statistics = None
            else:
                _record_closed_form_epoch(net, train_stats, valid, device)

        self.net_ = net
        self.history_ = net.history
        self.device_ = device
        self.solver_ = solver
        self.alpha_ = alpha_
        self.train_stimuli_, self.valid_stimuli_ = train_idx, valid_idx
        self._y_layout = data.y_layout
        self.n_features_in_ = data.X.shape[2]
        self.n_neurons_ = data.y.shape[2]
        self._check_divergence()
        with torch.no_grad():
            module = net.module_
            self.strfs_ = module.strf()[:, 0].cpu().numpy().astype(np.float64)
            self.intercept_ = module.intercept().cpu().numpy().astype(np.float64)
        self.n_params_per_neuron_ = sum(p.numel() for p in module.parameters()) // self.n_neurons_
        return self

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
                   seed: int, alphas: np.ndarray) -> STRFNet:
        x_mean, x_scale = _masked_moments(train.X, train.frame_mask)
        y_mean, y_scale = _masked_moments(train.psth(), train.frame_mask)
        generator = torch.Generator().manual_seed(seed)
        kernel = make_kernel(self.kernel, train.y.shape[2], 1, train.X.shape[2], self.n_lags,
                             rank=self.rank, n_gaussians=self.n_gaussians, generator=generator)
        module = STRFModel(kernel, *(torch.as_tensor(a) for a in (x_mean, x_scale, y_mean, y_scale)))
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
        n_train = train.n_stimuli
        batch_size = n_train if self.batch_size is None else min(self.batch_size, n_train)
        net = STRFNet(
            module,
            criterion=MaskedMSELoss,
            criterion__weight=torch.as_tensor(1.0 / y_scale**2, dtype=torch.float32),
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=0.0,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=batch_size,
            iterator_train__shuffle=True,
            train_split=train_split,
            callbacks=callbacks + list(self.callbacks or []),
            device=device,
            verbose=self.verbose,
            alpha=float(alphas[0]) if alphas.size == 1 else 0.0,
        )
        return net.initialize()

    def _resolve_solver(self) -> str:
        compatible = {"ridge": "vanilla", "als": "separable"}
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
            return "closed_form" if self.kernel == "parametric" else "random"
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
        if self.kernel == "separable" and solver == "als":
            if valid_stats is not None and grid.numel() > 1:
                path = solvers.ridge_path(train_m, grid)  # (A, D, N)
                start = path.transpose(1, 2).reshape(-1, F, L)
                fitted = solvers.fit_als(train_m, start, grid.repeat_interleave(N), F, L, self.rank)
                fitted = fitted.reshape(grid.numel(), N, F * L).transpose(1, 2)
                scores = solvers.validation_correlation(fitted, solvers.intercept(train_m, fitted), valid_stats)
                chosen = grid[solvers._best_per_neuron(scores, grid)]
                weight = solvers.ridge_path(refit_m, chosen[None])[0]
            weight = solvers.fit_als(refit_m, weight.T.reshape(N, F, L), chosen, F, L, self.rank)
            weight = weight.reshape(N, F * L).T
        with torch.no_grad():
            module.kernel.set_weight(weight.T.reshape(N, C, F, L).to(module.bias))
            actual = module.standardized_weight().double().T
            module.bias.copy_(solvers.intercept(refit_m, actual).to(module.bias))
        return chosen.cpu().numpy()

    def _check_divergence(self) -> None:
        stop = dict(self.net_.callbacks_)["stop_on_non_finite"]
        if stop.diverged_epoch_ is None:
            return
        early = dict(self.net_.callbacks_).get("early_stopping")
        best = getattr(early, "best_epoch_", None) if early is not None else None
        if best is None or best >= stop.diverged_epoch_:
            del self.net_
            raise DivergenceError(
                f"training diverged: the training loss became non-finite at epoch "
                f"{stop.diverged_epoch_} and no earlier epoch was validated; lower lr "
                f"(now {self.lr}) or scale the inputs."
            )
        warnings.warn(
            f"training diverged at epoch {stop.diverged_epoch_} (non-finite loss); the "
            f"model of the best finite epoch ({best}) was restored. Consider a lower lr "
            f"(now {self.lr}).",
            RuntimeWarning,
            stacklevel=3,
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
        data = check_stimuli(X, n_freqs=self.n_features_in_)
        pred = self._predict_stimuli(data)
        return self._to_user_layout(pred, data.x_ndim)

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
        data = check_responses(y, check_stimuli(X, n_freqs=self.n_features_in_))
        pred = self._predict_stimuli(data)
        return float(cc_norm(data.y, pred))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = True
        return tags


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
    scale = np.where(scale > 1e-12 * np.maximum(np.abs(mean), 1.0), scale, 1.0)
    return mean, scale


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


def _net_inputs(data: StimulusSet, device: str) -> dict[str, torch.Tensor]:
    return {
        "X": torch.as_tensor(_zero_filled(data), device=device),
        "index": torch.arange(data.n_stimuli, device=device),
    }


def _net_targets(data: StimulusSet, device: str) -> torch.Tensor:
    return torch.as_tensor(data.psth(), dtype=torch.float32, device=device)
