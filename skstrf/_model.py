"""The STRF torch model (prefilter, linear stage, nonlinearity), built and standardised on the training data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .kernels import N_GAUSSIANS, make_kernel
from .nonlinearities import make_nonlinearity
from ._design import DesignStatistics, lagged_design, lagged_statistics
from ._moments import FrameMoments
from ._penalty import band_scales
from ._validation import tensor_to_read

if TYPE_CHECKING:
    from ._validation import StimulusSet

__all__ = ["STRFModel", "build_model", "stimulus_tensors", "design_tensors", "module_statistics",
           "prefiltered", "net_inputs", "net_targets", "calibrate_nonlinearity", "input_moments",
           "predict_in_blocks", "receptive_frames", "PREDICT_BLOCK_BYTES"]


class STRFModel(nn.Module):
    """STRF model: optional prefilter, linear stage (kernel, intercept), optional nonlinearity.

    The kernel and the bias live in standardised units (each input channel-band and each
    neuron's PSTH scaled to zero mean and unit variance over the training frames), which
    makes learning rates and initial scales independent of the data's units. ``strf()``
    and ``intercept()`` map them back to the data's units; the two forms are exactly the
    same affine model. ``forward`` passes the spectrogram through the prefilter (if any),
    the linear stage, then the output nonlinearity (if any).

    **Offsets and precision.** The module computes in float32 on inputs and outputs
    relative to float64 offsets: it reads ``X - x_offset`` (:func:`module_input`) and its
    output plus ``y_offset`` is the prediction in the data's units. Removing the offsets
    in float64 before any float32 rounding keeps a large constant in X or y (a level of
    1e8) from swamping the signal. A prefilter reads the stimulus in its own units (its
    adaptation depends on the level), so ``x_offset`` is zero with one; an output
    nonlinearity produces rates, so ``y_offset`` is zero with one.

    **History.** Before each stimulus the linear stage reads ``history`` (in its input's
    units, :mod:`skstrf._history`): ``history - x_offset`` in the module's.

    Parameters
    ----------
    kernel : nn.Module
        Returns a weight of shape (n_neurons, n_channels, n_freqs, n_lags) when called.
    x_mean, x_scale : Tensor of shape (n_channels * n_freqs,)
        Mean and standard deviation of each input channel-band (after the prefilter).
    y_mean, y_scale : Tensor of shape (n_neurons,)
        Mean and standard deviation of each neuron's PSTH (after ``y_offset`` is removed).
    prefilter : nn.Module or None, default=None
        Maps stimuli (n_stimuli, n_times, n_freqs) to (n_stimuli, n_times,
        n_channels * n_freqs), channel-major (e.g. :class:`skstrf.prefilters.AdapTrans`).
    nonlinearity : nn.Module or None, default=None
        Maps the linear output (..., n_neurons) to rates of the same shape (e.g.
        :class:`skstrf.nonlinearities.Softplus`).
    x_offset : Tensor of shape (n_freqs,) or None, default=None
        Subtracted (in float64) from the stimuli before they enter the module; None is zero.
        Must be zero with a prefilter.
    y_offset : Tensor of shape (n_neurons,) or None, default=None
        Added (in float64) to the module's output to give predictions in the data's units;
        None is zero. Must be zero with a nonlinearity.
    history : Tensor of shape (n_channels * n_freqs,) or None, default=None
        What the linear stage reads before each stimulus, in its input's units (the bands',
        or the prefilter's output's); None is zero.

    Notes
    -----
    With ``x_mean, y_mean`` the moments of the centred data, ``x_mean`` is the mean of the
    module's input (after the prefilter) and ``y_mean`` that of its output.
    """

    def __init__(self, kernel: nn.Module, x_mean: torch.Tensor, x_scale: torch.Tensor,
                 y_mean: torch.Tensor, y_scale: torch.Tensor, prefilter: nn.Module | None = None,
                 nonlinearity: nn.Module | None = None, x_offset: torch.Tensor | None = None,
                 y_offset: torch.Tensor | None = None, history: torch.Tensor | None = None) -> None:
        super().__init__()
        self.kernel = kernel
        self.prefilter = prefilter
        self.nonlinearity = nonlinearity
        n_neurons = kernel.shape[0]
        self.bias = nn.Parameter(torch.zeros(n_neurons))
        self.register_buffer("x_mean", x_mean.float())
        self.register_buffer("x_scale", x_scale.float())
        self.register_buffer("y_mean", y_mean.float())
        self.register_buffer("y_scale", y_scale.float())
        n_inputs = x_mean.shape[0] if prefilter is None else prefilter.n_freqs
        x_offset = torch.zeros(n_inputs) if x_offset is None else torch.as_tensor(x_offset)
        y_offset = torch.zeros(n_neurons) if y_offset is None else torch.as_tensor(y_offset)
        if (prefilter is not None and bool(x_offset.any())) or (nonlinearity is not None and bool(y_offset.any())):
            raise ValueError("x_offset must be zero with a prefilter, and y_offset with a nonlinearity")
        self.register_buffer("x_offset", x_offset.double())
        self.register_buffer("y_offset", y_offset.double())
        history = torch.zeros(x_mean.shape[0]) if history is None else torch.as_tensor(history)
        self.register_buffer("history", history.double())

    @property
    def n_lags(self) -> int:
        return self.kernel.shape[-1]

    def standardized_weight(self) -> torch.Tensor:
        """Kernel weight in standardised units, in the design statistics' columns: flattened
        to (n_neurons, C * F * L), or (n_neurons, C * F * n_basis) over a lag basis."""
        return self.kernel.coefficients().reshape(self.kernel.shape[0], -1)

    def strf(self) -> torch.Tensor:
        """STRFs in the data's units, shape (n_neurons, n_channels, n_freqs, n_lags)."""
        weight = self.kernel()
        scale = (self.x_scale.reshape(weight.shape[1:3]))[None, :, :, None]
        return weight * self.y_scale[:, None, None, None] / scale

    def centred_intercept(self) -> torch.Tensor:
        """Intercepts in the module's units (relative to the offsets), shape (n_neurons,)."""
        weight = self.kernel()
        shift = (self.x_mean / self.x_scale).reshape(weight.shape[1:3])[None, :, :, None]
        return self.y_mean + self.y_scale * (self.bias - (weight * shift).sum(dim=(1, 2, 3)))

    def intercept(self) -> torch.Tensor:
        """Intercepts in the data's units, shape (n_neurons,), in float64."""
        intercept = self.y_offset + self.centred_intercept().double()
        if self.prefilter is None:
            intercept = intercept - self.strf().double().sum(dim=(1, 3)) @ self.x_offset
        return intercept

    @property
    def history_fill(self) -> torch.Tensor | None:
        """What the linear stage reads before each stimulus, in the module's units (its
        input minus ``x_offset``); None when that is zero."""
        fill = self.history if self.prefilter is not None else self.history - self.x_offset
        return fill.float() if bool(fill.any()) else None

    @torch.no_grad()
    def load_closed_form_(self, weight: torch.Tensor, z_mean: torch.Tensor, p_mean: torch.Tensor) -> None:
        """Set the kernel to (its best approximation of) ``weight`` and centre the intercept.

        Parameters
        ----------
        weight : Tensor of shape (C * F * L, n_neurons)
            Standardised weights in the design's column order (a closed-form solution);
            over a lag basis, its coefficients (C * F * n_basis, n_neurons).
        z_mean, p_mean : Tensor of shape (D,) and (n_neurons,)
            Frame means of the standardised design and PSTH the weights were fitted on; the
            intercept makes the predictions' mean match, for the weight the kernel holds.
        """
        self.kernel.set_coefficients(weight.T.reshape(self.kernel.shape[0], *self.kernel.coefficient_shape).to(self.bias))
        actual = self.standardized_weight().double().T
        self.bias.copy_((p_mean - z_mean @ actual).to(self.bias))

    @property
    def is_linear(self) -> bool:
        """True when the model is affine in the stimulus with a fixed design.

        That is: no output nonlinearity, and no prefilter or a fixed linear one (such as
        :class:`skstrf.prefilters.ICAdaptation`), whose output then stands for the stimulus.
        """
        fixed = self.prefilter is None or getattr(self.prefilter, "is_linear", False)
        return self.nonlinearity is None and fixed

    def linear(self, X: torch.Tensor) -> torch.Tensor:
        """Output of the linear stage (after the prefilter, before the nonlinearity).

        Parameters
        ----------
        X : Tensor of shape (n_stimuli, n_times, n_freqs)
            Stimuli minus ``x_offset`` (see :func:`module_input`), float32 (without a
            prefilter, the last axis holds the n_channels * n_freqs channel-bands).

        Returns
        -------
        Tensor of shape (n_stimuli, n_times, n_neurons)
            Minus ``y_offset``.
        """
        if self.prefilter is not None:
            X = self.prefilter(X)
        Z = lagged_design(X, self.n_lags, self.history_fill).flatten(2)
        weight = self.strf().reshape(self.kernel.shape[0], -1)
        return Z @ weight.T + self.centred_intercept()

    def forward(self, X: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        """Predict responses.

        Parameters
        ----------
        X : Tensor of shape (n_stimuli, n_times, n_freqs)
            Stimuli minus ``x_offset`` (see :func:`module_input`).

        Returns
        -------
        Tensor of shape (n_stimuli, n_times, n_neurons)
            Minus ``y_offset`` (zero with a nonlinearity).
        """
        z = self.linear(X)
        return z if self.nonlinearity is None else self.nonlinearity(z)

def build_model(n_freqs: int, n_neurons: int, moments: tuple, *, kernel: str, n_lags: int, rank: int = 1,
                n_gaussians: int = N_GAUSSIANS, nonlinearity: str = "identity", prefilter: nn.Module | None = None,
                history: np.ndarray | None = None, seed: int = 0, previous: STRFModel | None = None,
                lag_basis: np.ndarray | None = None, space_of_band: np.ndarray | None = None) -> STRFModel:
    """A new :class:`STRFModel` standardised on the training stimuli's moments.

    The linear stage sees the prefilter's initial output (if any), standardised per
    channel-band in the penalty's units (:func:`skstrf._penalty.band_scales`); each neuron's
    PSTH is standardised likewise. With ``previous`` (a warm start) the new model takes
    over the previous one's parameters and units instead. The kernel's random start is
    drawn from a generator seeded with ``seed``.

    Parameters
    ----------
    n_freqs, n_neurons : int
        Bands of the stimuli and neurons of the responses.
    moments : (FrameMoments, FrameMoments)
        Of the linear stage's input and of the PSTH over the training frames
        (:func:`input_moments`, or merged over the chunks of data larger than memory).
    prefilter : nn.Module or None, default=None
        The front end (:func:`skstrf.prefilters.make_prefilter`), held by the model.
    history : ndarray of shape (n_channels * n_freqs,) or None, default=None
        What the linear stage reads before each stimulus, in its input's units
        (:func:`skstrf._history.linear_history`); None is zero.
    lag_basis : ndarray of shape (n_lags, n_basis) or None, default=None
        The kernel's lag profiles lie in the span of these functions
        (:class:`skstrf.kernels.LagBasis`); None: every lag is free.
    space_of_band : ndarray of int of shape (n_freqs,) or None, default=None
        The feature space of each band (the penalty family's ``space_of_band``): the
        band-scale floor is taken within each space; None: one space.
    """
    x_moments, y_moments = moments
    x_mean, x_scale = band_scales(x_moments, n_freqs, space_of_band)
    y_mean, y_scale = y_moments.standardisation()
    # Centre in float64 where the model allows it (see STRFModel, "Offsets and precision").
    x_offset = y_offset = None
    if prefilter is None:
        x_offset, x_mean = x_mean, np.zeros_like(x_mean)
    if nonlinearity == "identity":
        y_offset, y_mean = y_mean, np.zeros_like(y_mean)
    if previous is not None:
        # The continued model keeps its own units, and the loss weights follow them.
        y_mean, y_scale = previous.y_mean.double().cpu().numpy(), previous.y_scale.double().cpu().numpy()
    generator = torch.Generator().manual_seed(seed)
    n_channels = 1 if prefilter is None else prefilter.n_channels
    weights = make_kernel(kernel, n_neurons, n_channels, n_freqs, n_lags,
                          rank=rank, n_gaussians=n_gaussians, generator=generator, basis=lag_basis)
    module = STRFModel(weights, *(torch.as_tensor(a) for a in (x_mean, x_scale, y_mean, y_scale)),
                       prefilter=prefilter, nonlinearity=make_nonlinearity(nonlinearity, y_mean, y_scale),
                       x_offset=None if x_offset is None else torch.as_tensor(x_offset),
                       y_offset=None if y_offset is None else torch.as_tensor(y_offset),
                       history=None if history is None else torch.as_tensor(history))
    if previous is not None:
        changed = ValueError(
            "warm_start=True continues the previous model, but kernel, n_lags, lag_basis, rank, "
            "n_gaussians, nonlinearity or prefilter changed since the previous fit; set them "
            "back, or fit with warm_start=False."
        )
        # A kernel whose parameters do not depend on the lags (Gaussians) would load into a
        # model of other lags: the kernel's class and shape are compared first.
        frames = module.kernel.lag_frame, previous.kernel.lag_frame
        if (type(module.kernel) is not type(previous.kernel)
                or tuple(module.kernel.shape) != tuple(previous.kernel.shape)
                or (frames[0] is None) != (frames[1] is None)
                or (frames[0] is not None and not torch.equal(frames[0], frames[1].to(frames[0].device)))):
            raise changed
        try:
            module.load_state_dict(previous.state_dict())
        except RuntimeError as exc:
            raise changed from exc
    return module


def input_moments(data: "StimulusSet", prefilter: nn.Module | None = None) -> tuple[FrameMoments, FrameMoments]:
    """:class:`~skstrf._validation.FrameMoments` of what a model standardises over ``data``'s
    valid frames: the linear stage's input (the stimuli, or the output of ``prefilter``
    at its initial parameters; the lead-in frames included) and the PSTH (over the frames
    it is fitted on: the lead-in frames excluded)."""
    stimuli = data.X if prefilter is None else prefiltered(prefilter, data)
    return FrameMoments.of(stimuli, data.frame_mask), FrameMoments.of(data.psth(), data.scored_mask)


def _zero_filled(data: "StimulusSet") -> np.ndarray:
    return np.nan_to_num(data.X, nan=0.0).astype(np.float32)


def module_input(X: np.ndarray, module: STRFModel | None = None) -> np.ndarray:
    """Stimuli as ``module`` reads them: minus its ``x_offset`` in float64, then float32.

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_times, n_freqs)
        Stimuli in the data's units, NaN (or any value) on end-padding frames.
    module : STRFModel or None, default=None
        None: no offset.

    Returns
    -------
    ndarray of float32 of the same shape
        Zero where X is NaN (end padding, which a causal model never reads).
    """
    if module is None:
        return np.nan_to_num(np.asarray(X, dtype=np.float64), nan=0.0).astype(np.float32)
    centred = np.asarray(X, dtype=np.float64) - module.x_offset.cpu().numpy()
    return np.nan_to_num(centred, nan=0.0).astype(np.float32)


def _module_targets(data: "StimulusSet", module: STRFModel | None) -> np.ndarray:
    """The PSTH minus ``module``'s ``y_offset`` (in float64), as float32; NaN on the lead-in
    frames (not fitted)."""
    psth = data.scored(data.psth())
    if module is not None:
        psth = psth - module.y_offset.cpu().numpy()
    return psth.astype(np.float32)


def stimulus_tensors(data: "StimulusSet", device: str, module: STRFModel | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stimuli, PSTH and frame mask of ``data`` as float32 tensors on ``device``, in
    ``module``'s units (minus its offsets; see :class:`STRFModel`).

    Returns
    -------
    X : Tensor of shape (n_stimuli, n_times, n_freqs)
        Zero on padding frames.
    P : Tensor of shape (n_stimuli, n_times, n_neurons)
        NaN on padding frames.
    mask : Tensor of shape (n_stimuli, n_times)
        1.0 on valid frames, 0.0 on padding.
    """
    return (
        torch.as_tensor(module_input(data.X, module), device=device),
        torch.as_tensor(_module_targets(data, module), device=device),
        torch.as_tensor(data.frame_mask, dtype=torch.float32, device=device),
    )


def design_tensors(module: STRFModel, data: "StimulusSet", device: str) -> tuple[torch.Tensor, ...]:
    """What ``module``'s linear stage sees (the prefilter's output, if any), PSTH and mask.

    The inputs of :func:`design_statistics`; see :func:`stimulus_tensors` for the shapes.
    Unlike there, ``P`` is the PSTH in the data's units, float64, ``module``'s
    ``y_offset`` not removed: on the CPU a view of ``data.psth()``, so that the largest
    array of a fit is never copied (:func:`module_statistics` removes the offset block by
    block).
    """
    X = torch.as_tensor(module_input(data.X, module), device=device)
    mask = torch.as_tensor(data.frame_mask, dtype=torch.float32, device=device)
    if module.prefilter is not None:
        with torch.no_grad():
            X = module.prefilter(X)
    # with one repeat the PSTH is a view of y, which the user may have made read-only
    return X, tensor_to_read(data.psth()).to(device), mask


def module_statistics(module: STRFModel, data: "StimulusSet", device: str, n_blocks: int = 1, *,
                      groups: torch.Tensor | np.ndarray | None = None,
                      n_groups: int | None = None) -> DesignStatistics:
    """Per-stimulus (or per-block) :class:`DesignStatistics` of ``data`` in ``module``'s
    standardised units; see :func:`design_statistics` for ``n_blocks``.

    With ``groups`` (one entry per row, ``0 .. n_groups - 1``) the rows are summed into
    ``n_groups`` groups as they are computed, without per-row statistics (see
    :func:`skstrf._design.lagged_statistics`). Over a lag basis, the statistics are those
    of the design's projection onto it (:meth:`skstrf.kernels.LagBasis.coefficients`' columns).
    """
    X, P, mask = design_tensors(module, data, device)
    x_mean = module.x_mean
    fill = module.history_fill
    if fill is not None and module.n_lags > 1 and bool(fill.any()):
        # The history before a stimulus is ``fill`` in the module's units: shifting X by it
        # (in float64) makes the history zero, as lagged_statistics reads it.
        shift = fill.to(device=X.device, dtype=torch.float64)
        X, x_mean = X.double() - shift, x_mean.double() - shift
    # P is in the data's units: the offset is taken off block by block, with the float32
    # rounding of the targets the net trains on (net_targets)
    return lagged_statistics(X, P, mask, module.n_lags, x_mean, module.x_scale, module.y_mean,
                             module.y_scale, n_blocks=n_blocks, groups=groups, n_groups=n_groups,
                             basis=module.kernel.lag_frame,
                             p_offset=module.y_offset, starts=torch.as_tensor(data.first_scored, device=X.device))


def prefiltered(prefilter: nn.Module, data: "StimulusSet") -> np.ndarray:
    """The prefilter's output on ``data``'s stimuli (S, T, C * F) as float64, on the CPU."""
    with torch.no_grad():
        return prefilter(torch.as_tensor(_zero_filled(data))).numpy().astype(np.float64)


#: Memory of the lagged input of one block of :func:`predict_in_blocks` (bytes): the
#: transient intermediates of a prediction are a few times this, whatever the recording's length.
PREDICT_BLOCK_BYTES = 64 * 2**20


def receptive_frames(module: STRFModel) -> int:
    """Frames before frame ``t`` that the prediction at ``t`` reads: the lags, and the
    prefilter's taps before them."""
    taps = 0 if module.prefilter is None else int(module.prefilter.n_taps) - 1
    return module.n_lags - 1 + taps


def predict_in_blocks(module: STRFModel, X: np.ndarray, device: str,
                      block_bytes: int = PREDICT_BLOCK_BYTES) -> np.ndarray:
    """The module's output for stimuli ``X``, computed a block of frames at a time.

    Long recordings and many stimuli are cut into blocks whose lagged input stays within
    ``block_bytes``; each block of frames starts with :func:`receptive_frames` frames of its
    real history, whose outputs are discarded, so that the result equals the whole
    prediction (the history rule applies at each stimulus's start only). Peak memory is the
    output, X, and a few blocks.

    Parameters
    ----------
    module : STRFModel
    X : ndarray of shape (n_stimuli, n_times, n_freqs)
        Stimuli in the data's units, NaN (or anything) on end padding.
    device : str
    block_bytes : int, default=PREDICT_BLOCK_BYTES

    Returns
    -------
    ndarray of float64 of shape (n_stimuli, n_times, n_neurons)
        The module's output (minus ``y_offset``), on every frame (padding included).
    """
    S, T, F = X.shape
    n_neurons = module.kernel.shape[0]
    per_frame = 4 * max(1, module.kernel.shape[1]) * F * module.n_lags  # float32 lagged input
    frames = max(1, block_bytes // per_frame)
    history = receptive_frames(module)
    out = np.empty((S, T, n_neurons))
    if T <= frames:  # whole stimuli, as many as fit in a block
        rows = max(1, frames // max(T, 1))
        spans = [(slice(i, i + rows), 0, T) for i in range(0, S, rows)]
    else:  # each stimulus in blocks of frames
        spans = [(slice(s, s + 1), t, min(t + frames, T)) for s in range(S) for t in range(0, T, frames)]
    with torch.no_grad():
        for rows, start, stop in spans:
            first = max(0, start - history)  # real history of the block, outputs discarded
            block = torch.as_tensor(module_input(X[rows, first:stop], module), device=device)
            out[rows, start:stop] = module(block)[:, start - first:].double().cpu().numpy()
    return out


def net_inputs(data: "StimulusSet", device: str, module: STRFModel | None = None) -> dict[str, torch.Tensor]:
    """The net's input: the stimuli in ``module``'s units (see :func:`module_input`) and
    their indices (for the statistics step)."""
    return {
        "X": torch.as_tensor(module_input(data.X, module), device=device),
        "index": torch.arange(data.n_stimuli, device=device),
    }


def net_targets(data: "StimulusSet", device: str, module: STRFModel | None = None) -> torch.Tensor:
    """The net's target: the PSTH (S, T, N) minus ``module``'s ``y_offset``, as float32,
    NaN on padding frames."""
    return torch.as_tensor(_module_targets(data, module), device=device)


def calibrate_nonlinearity(module: STRFModel, data: "StimulusSet", device: str, loss: str) -> None:
    """Fit the output nonlinearity's own parameters to ``data`` with the linear stage fixed."""
    calibrate = getattr(module.nonlinearity, "calibrate_", None)
    if calibrate is None:
        return
    X, P, mask = stimulus_tensors(data, device, module)
    with torch.no_grad():
        z = module.linear(X)
    valid = mask.bool()
    calibrate(z[valid], P[valid], loss)
