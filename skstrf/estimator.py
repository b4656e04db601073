"""STRFRegressor: the scikit-learn estimator for spectro-temporal receptive fields."""

from __future__ import annotations

import io
import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._chunked import is_dask_collection, predict_chunked, score_chunked
from ._data import fit_data
from ._history import HISTORIES, check_history_level, linear_history
from ._layout import to_user_layout
from ._model import build_model, module_statistics, predict_in_blocks
from ._net import (DivergenceError, build_net, check_callback_names, check_finite_model, record_closed_form_epoch,
                   refit_kept_start, start_from_closed_form, train_net)
from ._plan import NET_PARAM_PREFIXES, check_groups, fit_options, make_plan
from ._solvers import RANK_RULES, SOLVERS
from ._threads import fit_threads
from ._validation import (StimulusSet, check_feature_names, check_responses, check_stimuli, check_variation,
                          feature_names)
from ._warnings import user_stacklevel
from .kernels import KERNELS, N_GAUSSIANS
from .metrics import cc_norm
from .nonlinearities import NONLINEARITIES
from .prefilters import PREFILTERS

__all__ = ["STRFRegressor"]


def _chosen_penalty(penalty, family, n_neurons: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``alpha_`` (one penalty per neuron, or per neuron and feature space) and the chosen
    smoothness shares, from a fit's penalty and its family of candidate forms."""
    alpha = penalty.per_neuron(n_neurons)
    index = np.zeros(n_neurons, dtype=np.int64) if penalty.index is None else penalty.index
    if isinstance(penalty.form, tuple) or len(family.forms) > 1:
        forms = penalty.forms
        index = np.array([family.forms.index(forms[k]) for k in index]) if forms != family.forms else index
    if family.space_of_band is not None:
        alpha = alpha[:, None] * family.spaces[index]
    smoothness = family.smoothness[index]
    return alpha, smoothness[:, 0].copy(), smoothness[:, 1].copy()


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
    n_gaussians : int, default=24
        Number of Gaussians of the parametric kernel (8 before December 2026; 24 closed its
        gap to vanilla on the generated songs, user guide "Parametric: a few Gaussian blobs").
    rank : int, "auto" or array-like of int, default="auto"
        Number of separable components of the separable kernel. A sequence is a grid:
        ALS fits every rank of it and each neuron keeps the rank its own held-out score
        prefers (``cv``'s folds; with ``cv=None``, the validation stimuli) by
        ``rank_rule``: by default the best score; the choice is ``rank_``. "auto" is the
        grid ``(1, 2, 3, 4)`` (ranks up to ``min(n_freqs, n_lags)``; ``(1, 2, 3)`` with
        the one-standard-error rule before December 2026); with neither folds nor
        validation stimuli (``cv=None`` and none held out) it is rank 1, where a grid
        raises (the final fit of a fine-tuned model with ``cv=None`` chooses on the
        validated run's validation stimuli: see ``validation_fraction``). Gradient training
        from the closed-form start (the default with a nonlinearity) starts from the ALS fit
        with the chosen ranks; from a random start it has the grid's lowest rank. The
        kernel holds the largest rank of the grid (a neuron of a lower rank has zero
        components, which training leaves at zero). ``rank=1`` fixes the classic separable STRF, in a fifth to a half of
        the fit time. See the user guide, :ref:`kernels`.
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
        from the closed-form STRF (see ``init``).
    prefilter : {None, "adaptrans", "ic_adaptation"}, default=None
        Front end applied to the spectrogram before the STRF. "adaptrans": learnable ON and
        OFF adaptation channels per band (Rançon et al. 2024), rectified, fitted jointly with
        the STRF, which then has 2 input channels. "ic_adaptation": the fixed midbrain
        adaptation of Willmore et al. (2016), one channel; a fixed linear map, so a linear
        model on it keeps the closed-form solvers. See :mod:`skstrf.prefilters`.
    dt_ms : float, default=5.0
        Frame duration of the spectrogram in ms; used by ``prefilter`` only. With a
        prefilter it must give the slowest band's adaptation time constant at least one
        frame and its filters at most 10 000 taps (about 0.07 ms <= dt_ms <= 217 ms with the
        default ``freq_range``), or ``fit`` raises: a value outside is a unit mistake.
    freq_range : (float, float), default=(500.0, 20000.0)
        Centre frequencies in Hz of the lowest and the highest band (bands are taken evenly
        spaced on the mel scale in between); used by ``prefilter`` only, to initialise each
        band's adaptation time constant.
    solver : {"auto", "gradient", "ridge", "als", "lbfgs"}, default="auto"
        How the kernel is fitted. "gradient": AdamW through the skorch net (any kernel).
        "ridge": closed-form ridge regression (vanilla kernel). "als": alternating least
        squares, each half-step a closed-form ridge (separable kernel). "lbfgs": the
        penalised training loss minimised by L-BFGS from the statistics of all the training
        stimuli, none held out, from the closed-form start (see ``init``) (parametric
        kernel): each neuron its own run, in parameters scaled by its loss's curvature,
        until its loss falls by less than 3e-5 of the PSTH's variance over 10 iterations
        (at most 500; user guide "Parametric: a few Gaussian blobs"). "auto" picks "ridge" for vanilla, "als" for separable and
        "lbfgs" for parametric. The closed-form solvers (and "lbfgs") choose the penalty
        per neuron by cross-validation over all the stimuli given (``cv``; with
        ``cv=None``, on the validation stimuli), then refit on all stimuli with it. They
        fit linear least-squares models only (IC adaptation included, a fixed linear
        prefilter): with a nonlinearity, AdapTrans or the Poisson loss, "auto" is
        "gradient" (started from the closed-form linear solution, see ``init``) and
        "ridge"/"als"/"lbfgs" raise a ValueError.
    alpha : float, array-like of float or None, default=None
        L2 penalty on the kernel weights in standardised units: the per-frame MSE of each
        neuron (in units of its PSTH variance) plus ``alpha`` times the squared norm of its
        standardised kernel. A sequence is a grid from which the best penalty per neuron is
        chosen by cross-validating the closed-form linear model (``cv``), or, with
        ``cv=None``, on the validation stimuli. ``None``: the grid ``np.logspace(-4, 2, 13)``.
        Every solver uses the chosen penalty: "ridge" and "als" refit with it, and gradient
        training (parametric, LN, AdapTrans, or ``solver="gradient"``) is penalised by it.
        With ``cv=None`` the old rules apply: a single 1e-3 without validation stimuli,
        and 0 for gradient training from a random start.
    cv : int, cross-validation splitter or None, default=5
        How the penalty is chosen from the ``alpha`` grid: ``K`` folds of whole stimuli
        (contiguous, in the order given), or a scikit-learn splitter over the stimuli (its
        ``split`` sees one row per stimulus, and the ``groups`` given to :meth:`fit`:
        ``LeaveOneOut()`` leaves out each stimulus in turn, ``GroupKFold(5)`` keeps related
        stimuli together), or a list of ``(train, test)`` stimulus indices. The score of a
        penalty is the correlation of the out-of-fold predictions, pooled over all folds,
        with the PSTH; it is computed exactly from per-stimulus sufficient statistics, one
        eigendecomposition per fold for the whole grid. For one continuous recording (a
        single stimulus) the folds are ``K`` contiguous time blocks of it (every frame
        keeps its real lag history, which may reach into the previous block's stimulus).
        An int larger than the number of training stimuli (or frames) is cut down to it:
        one stimulus per fold. "ridge" and "als" then fit all stimuli, without validation
        stimuli; gradient-trained models cross-validate on their training stimuli only.
        ``None``: choose on the validation stimuli.
    alpha_per_neuron : bool, default=True
        Choose a penalty per neuron; ``False`` chooses one penalty for all (the best mean
        score over neurons).
    alpha_pooling : float in [0, 1], default=0.5
        How much each neuron's penalty choice leans on the population (with
        ``alpha_per_neuron=True``): a neuron's penalty maximises ``1 - alpha_pooling``
        times its own cross-validation (or validation) score plus ``alpha_pooling`` times
        the mean score over neurons. A single neuron's curve is noisy at low SNR; partial
        pooling keeps the choice per neuron while damping that noise. 0 uses each neuron's
        own curve only (as ``RidgeCV(alpha_per_target=True)``), 1 is the shared penalty.
        Kept on every case of ``benchmarks/defaults_cases.py`` (third-party sound
        included): no pooling and full pooling each lost somewhere.
    init : {"auto", "random", "closed_form"}, default="auto"
        Starting point of gradient training (and of L-BFGS). "closed_form" starts from
        the ridge solution (the ALS fit for separable kernels of one input channel, a
        greedy Gaussian decomposition of the ridge solution's peaks and troughs for
        parametric kernels); "random" from a random draw; "auto" is "closed_form" for the
        parametric kernel and for every model that is not linear (a nonlinearity,
        AdapTrans or the Poisson loss), "random" otherwise. With AdapTrans the
        closed-form start is computed on the prefilter's initial output; from it, gradient
        training keeps each neuron's closed-form penalty and the nonlinearity starts
        fitted to the closed-form linear stage (its gain, slope and offset by least
        squares, or by the Poisson likelihood: the two-stage model).
    lr : float or "auto", default="auto"
        AdamW learning rate (the kernel lives in standardised units, so one value suits
        every dataset). "auto" is 1e-4 when gradient training fine-tunes a model whose every
        parameter starts fitted: a model that is not linear (a nonlinearity or the Poisson
        loss) without a learnable front end, from its closed-form start (the two-stage
        model); from it, 1e-3 throws the auditory nerve's LN model off its start within
        three epochs, while 1e-4 rises smoothly (``benchmarks/kernels_earn.py``). "auto" is
        1e-3 otherwise (linear models, random starts, AdapTrans, whose front end starts at
        its literature values), which gave the best test cc_norm for every kernel on the
        synthetic benchmark (``benchmarks/RESULTS.md``, "Defaults"). A number is used as
        given; ``get_params`` returns "auto", ``net_.lr`` the rate the fit used.
    max_epochs : int, default=100
        Maximum number of passes over the training stimuli (of the validated run, for a
        model trained again on every stimulus: see ``validation_fraction``).
    batch_size : int or None, default=1
        Number of stimuli per gradient step; ``None`` uses all training stimuli at once.
    validation_fraction : float or None, default=0.15
        Fraction of the stimuli (at least one) held out for validation, for the early
        stopping of gradient training (and the penalty when ``cv=None``): the last ones, in
        the order given. For one continuous recording, the last fraction of its frames is
        held out as a contiguous block (its first frames see the ``history``). ``None``
        disables validation and early stopping. "ridge" and "als" with ``cv`` hold nothing
        out. A model fine-tuned from its closed-form start (see ``lr``) is then fitted
        again on every stimulus, the validation ones included, for the number of epochs
        early stopping chose (``n_refit_epochs_``), as ``validation_fraction=None`` with
        that ``max_epochs`` would fit it: the penalty cross-validated over every stimulus,
        the two-stage start of them all, then that many epochs. With ``cv=None`` the
        penalty (its form, and a separable kernel's rank) is chosen again on the same
        validation stimuli, as in the validated run, in the final model's units (its bands'
        and neurons' scales over every stimulus), then refitted on every stimulus.
        Validation chooses how long to train; the final model reads every stimulus.
    patience : int or None, default=10
        Stop after this many epochs without improvement of the validation cc_norm;
        ``None`` trains for ``max_epochs``. In both cases the best epoch is restored.
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        Torch device; "auto" picks CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds the kernel initialisation and the stimulus shuffling, which draw from
        generators owned by the fit (never torch's global one, so fits in parallel threads
        do not disturb each other). Fits on CPU with the same integer are identical.
    verbose : int, default=0
        1 prints skorch's per-epoch table.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks passed to the skorch net (instances, or ``(name, callback)``
        pairs); skorch calls them during training as in any skorch net. Each ``fit``
        initialises them once (their ``initialize()``, as skorch's ``fit`` does). The final
        fit of a fine-tuned model on every stimulus (``n_refit_epochs_``) continues the same
        instances, as skorch's ``partial_fit`` would: ``on_train_begin`` and
        ``on_train_end`` are called again, ``initialize()`` is not, so what a callback
        recorded during the validated run stays. That net's ``history`` holds only the
        final fit's epochs, numbered from 1, each with ``refit=True`` from its start and no
        validation entries (``history_`` then lists them after the validated ones); the
        routed settings of early stopping (``callbacks__early_stopping__...``) act on the
        validated run only. With ``warm_start=True`` the next ``fit`` continues the
        instances the previous fit held, without ``initialize()``, as skorch's
        ``warm_start`` does. A callback may not take a name of the net's own callbacks
        (skorch's ``epoch_timer``, ``train_loss``, ``valid_loss``, ``print_log``; skstrf's
        ``refit``, ``valid_cc_norm``, ``stop_on_non_finite``, ``early_stopping``,
        ``last_epoch``): ``fit`` raises before reading the data. Route settings to change
        one of those (``callbacks__early_stopping__patience=20``).
    warm_start : bool, default=False
        With gradient training, the next ``fit`` continues from the fitted model and its
        optimizer state (``history_`` grows, at most ``max_epochs`` more epochs, the current
        ``lr`` and routed parameters, validation on the new data's last stimuli, the same
        callback instances without a new ``initialize()``) instead of
        starting anew; the model options (kernel, ``n_lags``, ...) must not change.
        Closed-form solvers and "lbfgs" (a fit to convergence) refit from scratch.
    history : {"mean", "zero"}, float or array-like of shape (n_freqs,), default="mean"
        What the STRF reads before each stimulus (its first ``n_lags - 1`` frames reach
        back before it), and before each held-out block of a recording. "mean": each band's
        mean over the training frames, so that the fit does not depend on where zero is in
        X's units (``fit(X + c)`` and ``predict(X + c)`` equal ``fit(X)`` and
        ``predict(X)`` for a constant ``c`` per band). "zero": zero in X's units (other
        toolboxes' rule; a constant in X is then a step at every onset). A number or an
        array: that level per band, in X's units (e.g. the measured level of the silence
        that preceded the stimuli). With a prefilter the STRF reads the prefilter's
        training-mean output ("mean"), zero, or its steady response to the level. See the
        user guide, :ref:`history`.
    lead_in : int, default=0
        The first ``lead_in`` frames of every stimulus are context: the STRF reads them as
        history, but their responses are neither fitted nor scored, and ``predict`` gives
        NaN there. Give each stimulus with what the cell heard just before it (the recorded
        gap, the end of the previous sound) as its first frames: the fit then needs no
        assumption about what preceded the stimulus for its scored frames when
        ``lead_in >= n_lags - 1``. A held-out block of a recording (``validation_fraction``)
        likewise starts with ``n_lags - 1`` of its real preceding frames as a lead-in.
    smooth_freq, smooth_lag : float in [0, 1) or array-like of them, default=0.0
        Smoothness priors: the shares of the penalty given to the curvature (second
        difference) of each kernel's profile along the bands and along the lags, the
        identity (ridge) keeping the rest (``smooth_freq + smooth_lag < 1``). 0 and 0 is
        plain ridge. Every solver and loss uses the same penalty (closed forms by a change
        of variables); ``alpha`` still scales it (the mixed matrix has mean eigenvalue 1).
        A sequence is a grid: each neuron's share is chosen with its penalty by
        cross-validation (``cv``) among every combination whose sum is below 1 (the others
        are skipped), plain ridge (0, 0, when in the grid) kept unless another share's gain
        exceeds its standard error over the folds.
        The chosen shares are ``smooth_freq_`` and ``smooth_lag_``.
    feature_spaces : array-like or dict or None, default=None
        Groups of X's bands (feature spaces: a spectrogram and its onsets, two ears, ...),
        each with its own penalty: the sizes of consecutive groups along X's last axis
        (e.g. ``[34, 34, 1]``), a list of each space's band indices, or a dict of space
        name to band indices (or band names, for a DataFrame). The relative penalties of
        the spaces are chosen per neuron by cross-validation among ``space_penalties``
        (one reduction per candidate and fold), the shared penalty (all spaces alike) kept
        unless another candidate's gain exceeds its standard error over the folds;
        ``alpha_`` then holds one penalty per space and neuron.
    space_penalties : array-like of shape (n_candidates, n_spaces) or None, default=None
        The candidate relative penalties of the feature spaces (for two spaces, a 1-D
        sequence is the second's relative to the first). None: for two spaces, ratios
        from 1/100 to 100 in half decades, and 1e-4 and 1e4 (11 candidates); for more, every
        combination of 1e-4, 0.01, 1, 100 and 1e4 relative to the first space
        (``5 ** (n_spaces - 1)`` candidates: 25 for three spaces, 125 for four; beyond, 125
        of them drawn at random with a fixed seed). The extremes all but drop a space that
        carries nothing.
    lag_basis : None, int or array-like of shape (n_lags, n_basis), default=None
        Lag profiles as combinations of a few smooth functions of the lag instead of one
        weight per lag. An int: that many raised cosines, narrow at short lags and wide at
        long ones (:func:`skstrf.kernels.raised_cosine_basis`); a matrix: its columns
        (linearly independent). Every kernel and solver works over the basis's
        coefficients (``C * F * n_basis`` weights per neuron for the vanilla kernel: a
        smaller, faster and smoother fit with many lags); the penalty is the STRF's
        (the basis is orthonormalised, same span), and ``strfs_`` stays in lags.
        None: every lag is free.
    rank_rule : {"best", "one_se"}, default="best"
        How each neuron's rank is chosen from a grid of ``rank`` (separable kernel only).
        "best": the rank with the best held-out score (ties to the lower rank), as
        scikit-learn's ``GridSearchCV`` chooses. "one_se": the parsimonious rule, the
        smallest adequate rank for interpretation: a neuron moves to a higher rank only
        when its gain over the lower rank exceeds the gain's standard error over ``cv``'s
        folds (on validation stimuli, without folds, it is "best"). "one_se" keeps
        exactly separable cells at their rank more often; "best" loses less on cells that
        are nearly but not exactly separable (user guide, :ref:`kernels`).
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
    contributions_ : ndarray of the shape of ``strfs_``
        ``strfs_`` times each input band's standard deviation over the training frames: how
        much a typical fluctuation of the band, at each lag, moves the prediction (in y's
        units). A band that hardly varies (a log spectrogram's floor) contributes nothing
        whatever its weight: this is the view of the STRF that shows what drives the cell
        (:func:`skstrf.plotting.plot_strfs` draws it with ``view="contributions"``).
    intercept_ : ndarray of shape (n_neurons,)
        Fitted intercepts in the data's units (of the linear stage).
    adaptation_tau_ms_ : ndarray of shape (n_channels, n_freqs)
        Only with a prefilter: the adaptation time constant of each band in ms, row 0 ON,
        row 1 OFF (AdapTrans only).
    adaptation_weight_ : ndarray of shape (n_freqs,)
        Only with a prefilter: the weight ``w`` of each band, shared by ON and OFF.
    n_features_in_ : int
        Number of frequency bands seen in ``fit``.
    feature_names_in_ : ndarray of str, one per band
        Only when ``fit`` was given a pandas ``DataFrame`` (one continuous recording,
        frames by bands) whose column names are all strings: the band names. ``predict``
        and ``score`` then raise if a DataFrame's columns differ, and warn when only one of
        the two calls had names.
    n_neurons_ : int
        Number of neurons seen in ``fit``.
    n_params_per_neuron_ : int
        Trainable parameters per neuron, intercept included (with 34 bands and 15 lags: 511
        for vanilla, 50 for separable at rank 1, 121 for parametric with its default 24
        Gaussians of 5 parameters each), plus 3 with the softplus and 2
        with the exponential nonlinearity; twice the kernel's with AdapTrans (two input
        channels). With a rank grid (``rank="auto"``), the separable kernel's count is at
        the largest rank a neuron chose (``rank_.max()``); a neuron of rank ``r`` uses
        ``r * (n_freqs + n_lags)`` kernel weights per input channel. The
        prefilter's own parameters are shared by all neurons and not counted
        (``3 * n_freqs`` for AdapTrans: the ON and OFF time constants and ``w`` of each
        band; none for IC adaptation).
    history_ : skorch.History
        Per epoch of gradient training: ``train_loss``, ``valid_loss``, ``valid_cc_norm``,
        ``dur`` (the validation entries only when validation stimuli were held out). A
        closed-form fit records one epoch with its ``train_loss`` (the penalised loss), and
        ``valid_loss`` and ``valid_cc_norm`` only when it held out validation stimuli
        (``cv=None``); with cross-validation inside ``fit`` its scores are ``cv_scores_``.
        Gradient training from a closed-form start never ends below that start on the
        validation stimuli: when no epoch beats it, the start is kept (``net_.kept_start_``)
        and made again from all the stimuli, the validation ones included (the ridge STRF
        with its chosen penalty and, for an LN model, its fitted nonlinearity: the
        two-stage model). A fine-tuned model (see ``lr``) with validation stimuli is then
        fitted again on every stimulus: its validated epochs come first, then the
        ``n_refit_epochs_`` epochs of that final fit, which carry ``refit=True`` and no
        validation entries (``history_[:, "valid_cc_norm"]`` lists the validated run's).
        An L-BFGS fit (``solver="lbfgs"``) records one epoch, like a closed form.
    n_refit_epochs_ : int or None
        Only for a model fine-tuned from its closed-form start (see ``lr``) with
        validation stimuli: the number of epochs of its final fit on every stimulus, the
        validation ones included (see ``validation_fraction``); early stopping's best epoch
        of the validated run (``max_epochs``, ``patience``), 0 when no epoch beat the start
        (the final model is then the two-stage model of every stimulus). None when that
        final fit diverged or was interrupted before an epoch completed: the validated
        model (of the training stimuli) was kept, with a warning.
    net_ : STRFNet
        The fitted skorch net holding the torch module (``net_.module_``).
    device_ : str
        The device the model lives on: the one it was trained on, or "cpu" after
        unpickling a CUDA-fitted estimator on a machine without CUDA.
    train_stimuli_, valid_stimuli_ : ndarray of int
        Indices (into the fitted X) of the training and validation stimuli; for one
        continuous recording split in time, ``[0]`` and ``[1]`` name its training and
        validation blocks. For a model fitted again on every stimulus
        (``n_refit_epochs_``), the split that chose its number of epochs.
    alpha_ : ndarray of shape (n_neurons,)
        The penalty of each neuron (the separable kernel's, when chosen by cross-validation:
        a fixed share of the free kernel's choice, by default the same).
    rank_ : ndarray of int of shape (n_neurons,)
        Only with the separable kernel: each neuron's rank (chosen by ALS's
        cross-validation from a grid of ``rank``; the kernel's rank otherwise).
    cv_scores_ : ndarray of shape (n_alphas, n_neurons)
        Only when the penalty was chosen by cross-validation: the pooled out-of-fold
        correlation of every penalty of ``cv_alphas_`` and neuron (the CV curve).
    cv_alphas_ : ndarray of shape (n_alphas,)
        The penalty grid of ``cv_scores_``.
    y_layout_ : {"neuron", "psth", "repeats"}
        The layout of the y seen in ``fit`` (``predict`` answers in it, without repeats).

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

    **Precision.** The torch model computes in float32, on data whose training means (per
    band of X, per neuron of y) were removed in float64; predictions, ``strfs_`` and
    ``intercept_`` are float64 in the data's units, so a large constant on y (or on X with
    ``n_lags=1``, or with the default ``history``) changes nothing. With ``history="zero"``
    a large constant on X is a step at every onset, and ``fit`` warns. A prefilter reads X,
    and a nonlinearity predicts, in the data's own units (not centred): the rectifying
    AdapTrans depends on where zero is in X's units, and ``fit`` says so.

    **Divergence.** When the training loss becomes non-finite, or grows more than 1e6 times
    above the loss of the run's first batch, training stops. The model of
    the best validated epoch before it is restored with a :class:`RuntimeWarning`. Without
    such an epoch (no validation stimuli, or divergence in the first epoch), a model that
    started fitted (the closed-form start of ``init``, its penalty cross-validated, with
    its calibrated nonlinearity: the two-stage model of an LN model) keeps that start, with
    a :class:`RuntimeWarning` (``net_.kept_start_`` is True; with validation stimuli it is
    made again from every stimulus, ``n_refit_epochs_`` 0), as it keeps it when no epoch
    beats it; any other start (random, or a warm start) makes ``fit`` raise
    :class:`skstrf.DivergenceError`. A fitted estimator never holds non-finite
    ``strfs_`` or ``intercept_``. When the final fit of a fine-tuned model on every
    stimulus (see ``validation_fraction``) diverges, or is interrupted before an epoch
    completes, the validated model is kept, with a warning, and ``n_refit_epochs_`` is None.

    **Interruption** (``KeyboardInterrupt``, e.g. Ctrl-C, during gradient training): as in
    skorch, training ends and ``fit`` returns, with a :class:`UserWarning`. The estimator
    then holds the model of the best validated epoch so far or, without validation
    stimuli, of the last complete epoch; ``history_`` ends with the interrupted, incomplete
    epoch. If no epoch was complete, or the interruption came outside the training loop
    (validation, statistics, a closed-form solve), the ``KeyboardInterrupt`` propagates and
    the estimator is left as it was. A callback that raises ``KeyboardInterrupt`` in
    ``on_epoch_end`` stops training deliberately (skorch's convention), without a warning.

    **Threads.** ``fit``, ``predict`` and ``score`` run torch with its current number of
    threads, but never more than the CPUs this process may use (its affinity mask and CPU
    quota, or ``OMP_NUM_THREADS``), and restore
    torch's setting afterwards: on a container or a shared node, torch's default (the
    machine's core count) would oversubscribe the CPUs and stall. While other processes
    keep CPUs busy, parallel regions use only the CPUs they leave free; independent tasks
    (the cross-validation folds, the chunks of stimuli of the statistics) still run side by
    side on every CPU the process may use (the user guide's "Solvers" page says why). Torch's thread count
    is one setting per process: run fits in processes (joblib's default backend), not in
    several threads of one process at once.

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

    # groups are fit's metadata for cv's splitter: with scikit-learn's metadata routing on,
    # groups meant for an outer splitter only are not routed here unless requested
    # (set_fit_request(groups=True)), so that adding the parameter broke no existing search
    __metadata_request__fit = {"groups": False}

    _parameter_constraints: dict = {
        "kernel": [StrOptions(set(KERNELS))],
        "n_lags": [Interval(numbers.Integral, 1, None, closed="left")],
        "lag_basis": [Interval(numbers.Integral, 1, None, closed="left"), "array-like", None],
        "n_gaussians": [Interval(numbers.Integral, 1, None, closed="left")],
        "rank": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"}), "array-like"],
        "rank_rule": [StrOptions(set(RANK_RULES))],
        "nonlinearity": [StrOptions(set(NONLINEARITIES))],
        "loss": [StrOptions({"mse", "poisson"})],
        "prefilter": [StrOptions(set(PREFILTERS)), None],
        "dt_ms": [Interval(numbers.Real, 0, None, closed="neither")],
        "freq_range": ["array-like"],
        "solver": [StrOptions({"auto", *SOLVERS})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left"), "array-like", None],
        "cv": ["cv_object"],  # an int >= 2, a splitter, an iterable of splits or None
        "alpha_per_neuron": ["boolean"],
        "alpha_pooling": [Interval(numbers.Real, 0, 1, closed="both")],
        "init": [StrOptions({"auto", "random", "closed_form"})],
        # beyond float32's range a step overflows before the first epoch can be judged
        "lr": [Interval(numbers.Real, 0, float(np.finfo(np.float32).max), closed="neither"), StrOptions({"auto"})],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither"), None],
        "patience": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, None],
        "warm_start": ["boolean"],
        "history": [StrOptions(set(HISTORIES)), "array-like", numbers.Real],
        "lead_in": [Interval(numbers.Integral, 0, None, closed="left")],
        "smooth_freq": [Interval(numbers.Real, 0, 1, closed="left"), "array-like"],
        "smooth_lag": [Interval(numbers.Real, 0, 1, closed="left"), "array-like"],
        "feature_spaces": ["array-like", dict, None],
        "space_penalties": ["array-like", None],
    }

    def __init__(
        self,
        kernel: str = "vanilla",
        n_lags: int = 15,
        n_gaussians: int = N_GAUSSIANS,
        rank: int | str = "auto",
        nonlinearity: str = "identity",
        loss: str = "mse",
        prefilter: str | None = None,
        dt_ms: float = 5.0,
        freq_range: tuple[float, float] = (500.0, 20000.0),
        solver: str = "auto",
        alpha: float | None = None,
        cv=5,
        alpha_per_neuron: bool = True,
        alpha_pooling: float = 0.5,
        init: str = "auto",
        lr: float | str = "auto",
        max_epochs: int = 100,
        batch_size: int | None = 1,
        validation_fraction: float | None = 0.15,
        patience: int | None = 10,
        device: str = "auto",
        random_state=None,
        verbose: int = 0,
        callbacks: list | None = None,
        warm_start: bool = False,
        history="mean",
        lead_in: int = 0,
        smooth_freq: float = 0.0,
        smooth_lag: float = 0.0,
        feature_spaces=None,
        space_penalties=None,
        lag_basis=None,
        rank_rule: str = "best",
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
        self.cv = cv
        self.alpha_per_neuron = alpha_per_neuron
        self.alpha_pooling = alpha_pooling
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
        self.history = history
        self.lead_in = lead_in
        self.smooth_freq = smooth_freq
        self.smooth_lag = smooth_lag
        self.feature_spaces = feature_spaces
        self.space_penalties = space_penalties
        self.lag_basis = lag_basis
        self.rank_rule = rank_rule
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
    def fit(self, X, y, groups=None) -> "STRFRegressor":
        """Fit the STRFs.

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)
            Stimulus spectrograms; stimuli of different lengths NaN-padded at the end.
            Dask arrays (X or y) chunked along stimuli are fitted out of core, with the
            closed-form solvers (user guide: "Data larger than memory").
        y : array-like of shape (n_stimuli, n_times, n_neurons, n_repeats)
            Responses; the neuron and repeats axes are optional (``y.ndim - X.ndim`` is
            -1, 0 or +1), missing repeats are NaN, padding frames are NaN as in X.
        groups : array-like of shape (n_stimuli,), default=None
            The group of each stimulus (e.g. the sound several excerpts come from), passed
            to the ``split`` of a group splitter given as ``cv`` (``GroupKFold``,
            ``LeaveOneGroupOut``): the penalty's folds then keep each group's stimuli
            together. Only with such a ``cv`` and 3-D X. Inside ``GridSearchCV`` or
            ``cross_validate``, route it with scikit-learn's metadata routing
            (``est.set_fit_request(groups=True)``).

        Returns
        -------
        self : STRFRegressor
            The fitted estimator.
        """
        names = feature_names(X)  # a DataFrame's band names, read before X is converted
        options = fit_options(self, y, self._net_params())  # the options alone, before any data
        check_callback_names(self.callbacks)
        groups = check_groups(groups, self.cv, getattr(X, "shape", None))
        with fit_threads():
            data = fit_data(X, y, self, options)  # in memory, or in dask chunks (out of core)
            plan = make_plan(self, options, data.shape, self._net_params(), groups, names)
            net, solution, band_std = self._fit_plan(data, plan)
            if plan.refits and net.validated_epochs_ is not None:  # the fit again on every stimulus
                final = make_plan(self, options, data.shape, self._net_params(), groups, names,
                                  final_epochs=net.validated_epochs_)
                net, solution, band_std, plan = self._fit_final(data, final, net, (solution, band_std, plan))
        check_finite_model(net.module_, net.lr)  # nothing non-finite is stored: raise first
        self._store(net, plan, data.shape, solution, names, band_std)
        return self

    def _fit_plan(self, data, plan, *, continues=None, validated=None):
        """One fit of ``plan`` on ``data``: the settled net, its closed-form solution (or
        None) and the standard deviation of each input band over the training frames.
        ``continues``: the validated net, when this is the final fit of a fine-tuned model
        on every stimulus, which continues its callbacks and whose divergence falls back to
        it (:meth:`_fit_final`), not to its own start; ``validated``: that run's plan, whose
        validation stimuli make the closed form's choices when ``plan.on_validated``."""
        train, valid = data.split(plan)
        prefilter = plan.make_prefilter(data.shape.n_freqs)
        raw, inputs, psth = train.moments(prefilter)  # over the training frames
        check_variation((raw, psth), plan.model.get("space_of_band"))
        check_history_level(plan.history, train.stimuli, self.n_lags, raw, prefilter)
        previous = self.net_ if plan.warm else None
        # Everything random draws from generators seeded with plan.seed, owned by this fit.
        module = build_model(data.shape.n_freqs, data.shape.n_neurons, (inputs, psth), prefilter=prefilter,
                             history=linear_history(plan.history, inputs.mean, prefilter),
                             previous=None if previous is None else previous.module_, **plan.model_options)
        net = build_net(module, train.n_stimuli, valid, penalty=plan.penalty, previous=previous,
                        continues=continues, steps=plan.solver == "gradient", **plan.net)
        groups, folds = plan.row_groups()  # a closed form sums the rows every fold treats alike
        stats = (train.statistics(net.module_, plan.device, plan.n_blocks, groups)
                 if plan.statistics and not (plan.on_validated and not plan.linear) else None)
        solution = valid_stats = None
        # the fit itself, or gradient training's start (a warm LN model keeps its penalties)
        if plan.closed_form or (plan.choose_penalty and (previous is None or plan.linear)):
            alphas = torch.as_tensor(plan.alphas, device=plan.device)
            if plan.on_validated:
                # cv=None: the choices of the validated run, made again in this module's
                # units on its validation stimuli; the solve refits on them all
                chosen_on = data.split(validated)
                solution = plan.solve(chosen_on[0].statistics(net.module_, plan.device),
                                      module_statistics(net.module_, chosen_on[1], plan.device), alphas,
                                      folds=None, **plan.solve_options)
            else:
                valid_stats = None if valid is None else module_statistics(net.module_, valid, plan.device)
                solution = plan.solve(stats, valid_stats, alphas, folds=folds, **plan.solve_options)
            start_from_closed_form(net, solution, train.stimuli, load=plan.closed_form)
            stats = stats.merge_blocks(plan.n_blocks) if groups is None and stats is not None else stats
        elif previous is not None and not plan.linear:
            net.penalty = previous.penalty  # continue with the first fit's penalties
        if plan.solver == "gradient":
            train_net(net, train.stimuli, stats if plan.linear else None, valid,
                      fitted_start=plan.closed_form and continues is None)
            if plan.closed_form and valid_stats is not None and plan.separable_shape is None:
                # a kept ridge start is made again from every stimulus (the two-stage model)
                refit_kept_start(net, solution.penalty, stats, valid_stats, train.stimuli, valid)
        else:
            if SOLVERS[plan.solver].polish is not None:  # an iterative fit on the statistics
                SOLVERS[plan.solver].polish(net.module_, stats, net.penalty)
            record_closed_form_epoch(net, stats, valid)
        return net, solution, inputs.std

    def _fit_final(self, data, plan, validated, kept):
        """The final fit of a fine-tuned model on every stimulus (``plan``, from
        ``make_plan(..., final_epochs=...)``), its history after the ``validated`` net's;
        when it diverges or is interrupted before an epoch completes, the validated fit
        (``validated`` and ``kept``: its solution, band scales and plan) with a warning."""
        epochs = validated.validated_epochs_
        try:
            net, solution, band_std = self._fit_plan(data, plan, continues=validated, validated=kept[2])
        except (DivergenceError, KeyboardInterrupt) as exc:
            warnings.warn(
                f"the final training on every stimulus (validation ones included, {epochs} epoch(s)) "
                f"{'diverged' if isinstance(exc, DivergenceError) else 'was interrupted'} ({exc}); "
                "keeping the validated model, trained on the training stimuli.",
                RuntimeWarning if isinstance(exc, DivergenceError) else UserWarning, stacklevel=user_stacklevel())
            validated.refit_epochs_ = None
            return (validated, *kept)
        rows = [dict(row) for row in validated.history]
        for row in net.history:
            rows.append({**row, "epoch": len(rows) + 1, "refit": True})
        net.history_ = type(net.history)(rows)
        net.refit_epochs_, net.kept_start_ = epochs, validated.kept_start_
        net.start_valid_cc_norm_ = validated.start_valid_cc_norm_
        net.validation_split_ = (kept[2].train, kept[2].valid)  # the stimuli that chose the epochs
        return net, solution, band_std, plan

    def _store(self, net, plan, shape, solution, names, band_std) -> None:
        """Set the fitted attributes from a settled net and its closed-form solution (if any);
        ``band_std``: the standard deviation of each input (channel-)band over the training
        frames."""
        module = net.module_
        self.net_ = net
        self.history_ = net.history
        self.device_ = plan.device
        self.solver_ = plan.solver
        self.alpha_, self.smooth_freq_, self.smooth_lag_ = _chosen_penalty(net.penalty, plan.family, shape.n_neurons)
        self.__dict__.pop("cv_scores_", None)
        self.__dict__.pop("cv_alphas_", None)
        if solution is not None and solution.scores is not None and plan.folds is not None:
            self.cv_scores_ = np.asarray(solution.scores, dtype=np.float64)
            self.cv_alphas_ = np.asarray(plan.alphas, dtype=np.float64)
        previous_rank = self.__dict__.pop("rank_", None)
        if plan.model["kernel"] == "separable":
            # the ranks of the ALS fit the model was loaded from (the fit, or gradient
            # training's start); a warm start continues the first fit's
            chosen = (solution.rank if solution is not None and plan.closed_form
                      else previous_rank if plan.warm else None)
            self.rank_ = (np.full(shape.n_neurons, plan.model["rank"], dtype=np.int64) if chosen is None
                          else np.asarray(chosen, dtype=np.int64))
        self.__dict__.pop("n_refit_epochs_", None)
        if hasattr(net, "refit_epochs_"):
            self.n_refit_epochs_ = net.refit_epochs_
        self.train_stimuli_, self.valid_stimuli_ = getattr(net, "validation_split_", (plan.train, plan.valid))
        self.y_layout_ = shape.y_layout
        self.n_features_in_ = shape.n_freqs
        self.n_neurons_ = shape.n_neurons
        with torch.no_grad():
            strfs = module.strf()
            self.strfs_ = (strfs[:, 0] if strfs.shape[1] == 1 else strfs).cpu().numpy().astype(np.float64)
            self.intercept_ = module.intercept().cpu().numpy().astype(np.float64)
        scale = np.asarray(band_std, dtype=np.float64).reshape(self.strfs_.shape[1:-1])[..., None]
        self.contributions_ = self.strfs_ * scale
        self.__dict__.pop("adaptation_tau_ms_", None)
        self.__dict__.pop("adaptation_weight_", None)
        if module.prefilter is not None:
            with torch.no_grad():
                self.adaptation_tau_ms_ = module.prefilter.tau_ms.cpu().numpy().astype(np.float64)
                self.adaptation_weight_ = module.prefilter.w.cpu().numpy().astype(np.float64)
        # The prefilter's parameters are shared by all neurons, so they are not per-neuron.
        self.n_params_per_neuron_ = sum(
            p.numel() for name, p in module.named_parameters() if not name.startswith("prefilter.")
        ) // self.n_neurons_
        held = getattr(module.kernel, "rank", None)
        if held is not None and hasattr(self, "rank_") and len(self.rank_):
            # a rank grid's kernel holds its largest rank; components beyond every neuron's
            # chosen rank are zero, not parameters of the fitted model
            unused = held - int(self.rank_.max())
            self.n_params_per_neuron_ -= max(unused, 0) * module.kernel.freq.shape[1] * (
                module.kernel.freq.shape[-1] + module.kernel.time.shape[-1])
        if names is None:
            self.__dict__.pop("feature_names_in_", None)
        else:
            self.feature_names_in_ = names

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
            NaN on padding frames. For a dask X, a dask array chunked like X along stimuli.
        """
        check_is_fitted(self, "net_")
        if is_dask_collection(X):
            return predict_chunked(self, X)  # a dask array, chunked like X
        data = self.check_stimuli(X)
        return to_user_layout(self.predict_stimuli(data), data.x_ndim, self.y_layout_)

    def check_stimuli(self, X) -> StimulusSet:
        """Validate stimuli for this fitted estimator (the data contract, the band count and,
        after a fit on a DataFrame, its band names).

        Parameters
        ----------
        X : array-like of shape (n_stimuli, n_times, n_freqs) or (n_times, n_freqs)

        Returns
        -------
        data : StimulusSet
            The stimuli in the stimulus layout (see :func:`skstrf._validation.check_stimuli`).
        """
        check_is_fitted(self, "net_")
        owner = type(self).__name__
        check_feature_names(X, getattr(self, "feature_names_in_", None), owner)
        return check_stimuli(X, n_freqs=self.n_features_in_, owner=owner).with_lead_in(self.lead_in)

    def predict_stimuli(self, data: StimulusSet) -> np.ndarray:
        """Predictions for validated stimuli, in the stimulus layout.

        Parameters
        ----------
        data : StimulusSet
            From :meth:`check_stimuli`.

        Returns
        -------
        y_pred : ndarray of shape (n_stimuli, n_times, n_neurons)
            NaN on padding frames.
        """
        module = self.net_.module_
        module.eval()  # inference mode (as skorch's predict sets it)
        with fit_threads():  # in blocks of frames: bounded memory for long recordings
            pred = predict_in_blocks(module, data.X, self.device_)
        pred += module.y_offset.cpu().numpy()  # back to the data's units, in float64
        pred[~data.scored_mask] = np.nan  # end padding and the lead-in
        bad = ~np.isfinite(pred[data.scored_mask])
        if bad.any():
            warnings.warn(
                f"{int(bad.sum())} predicted value(s) are not finite (overflow of the float32 "
                f"model{', e.g. its exponential output' if self.nonlinearity == 'exp' else ''}): "
                "these stimuli drive the model far beyond the range it was fitted on (are they "
                "on the training data's scale?).",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
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
            Dask X or y are scored chunk by chunk (:func:`skstrf._chunked.score_chunked`).
        sample_weight : None
            Not supported; present for scikit-learn compatibility.

        Returns
        -------
        score : float
        """
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by STRFRegressor.score")
        if is_dask_collection(X) or is_dask_collection(y):
            check_is_fitted(self, "net_")
            with fit_threads():
                return score_chunked(self, X, y)
        with fit_threads():  # the checks' torch reductions, as in fit
            data = check_responses(y, self.check_stimuli(X))
        if data.y.shape[2] != self.n_neurons_:
            raise ValueError(
                f"y has {data.y.shape[2]} neuron(s), but this estimator was fitted with "
                f"{self.n_neurons_} (n_neurons_ = {self.n_neurons_}); score the neurons it was "
                "fitted on, in the same order."
            )
        return float(cc_norm(data.scored(data.y), self.predict_stimuli(data)))

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
