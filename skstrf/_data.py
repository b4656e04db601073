"""Where a fit's data come from: one interface over data in memory and data in dask chunks.

:meth:`skstrf.STRFRegressor.fit` is one pipeline fed by a data source, which gives:

- ``shape``: the :class:`~skstrf._layout.DataShape` that planning reads;
- ``split(plan)``: the training source and the validation stimuli (in memory, or None);
- ``moments(prefilter)``: :class:`~skstrf._moments.FrameMoments` of X, of the linear
  stage's input and of the PSTH over the training frames;
- ``statistics(module, device, n_blocks, groups)``: the training stimuli's sufficient
  statistics in the model's units, summed by group;
- ``n_stimuli`` and, in memory only, ``stimuli`` (the :class:`~skstrf._validation.StimulusSet`
  that gradient training passes over).

:class:`InMemoryData` is the source of arrays in memory; :class:`skstrf._chunked.ChunkedData`
the one of dask arrays (closed-form fits only).
"""

from __future__ import annotations

import numpy as np
import torch

from ._chunked import chunked_data, is_dask_collection
from ._design import DesignStatistics
from ._layout import DataShape
from ._model import input_moments, module_statistics
from ._moments import FrameMoments
from ._validation import StimulusSet, check_non_negative, check_signed_for_positive_output, check_X_y
from .nonlinearities import NONLINEARITIES

__all__ = ["InMemoryData", "fit_data"]


class InMemoryData:
    """A fit's data in memory: validated stimuli and responses.

    Parameters
    ----------
    data : StimulusSet
        From :func:`skstrf._validation.check_X_y`.
    """

    def __init__(self, data: StimulusSet) -> None:
        self.stimuli = data

    @property
    def shape(self) -> DataShape:
        return self.stimuli.shape

    @property
    def n_stimuli(self) -> int:
        return self.stimuli.n_stimuli

    def split(self, plan) -> tuple["InMemoryData", StimulusSet | None]:
        """The training data and the validation stimuli (None when none is held out) of ``plan``."""
        # a held-out block of a recording starts with its real preceding frames as a lead-in
        data = self.stimuli if plan.cut is None else self.stimuli.cut(plan.cut, context=plan.model["n_lags"] - 1)
        valid = data.subset(plan.valid) if plan.valid.size else None
        return InMemoryData(data.subset(plan.train)), valid

    def moments(self, prefilter: torch.nn.Module | None) -> tuple[FrameMoments, FrameMoments, FrameMoments]:
        """Moments over the valid frames of X, of the linear stage's input (the output of
        ``prefilter`` at its initial parameters, or X) and of the PSTH."""
        inputs, psth = input_moments(self.stimuli, prefilter)
        raw = inputs if prefilter is None else FrameMoments.of(self.stimuli.X, self.stimuli.frame_mask)
        return raw, inputs, psth

    def statistics(self, module, device: str, n_blocks: int = 1, groups: np.ndarray | None = None
                   ) -> DesignStatistics:
        """:func:`skstrf._model.module_statistics` of these stimuli, summed by ``groups``."""
        return module_statistics(module, self.stimuli, device, n_blocks=n_blocks, groups=groups,
                                 n_groups=None if groups is None else int(groups.max()) + 1)


def fit_data(X, y, est, options):
    """The data source of a fit: :class:`InMemoryData`, or
    :class:`skstrf._chunked.ChunkedData` for dask arrays (checked before any is read).

    Parameters
    ----------
    X, y : array-like or dask arrays
        As given to :meth:`skstrf.STRFRegressor.fit`.
    est : STRFRegressor
    options : skstrf._plan.FitOptions
    """
    if is_dask_collection(X) or is_dask_collection(y):
        return chunked_data(X, y, est, options)
    data = check_X_y(X, y).with_lead_in(est.lead_in)
    if est.loss == "poisson":
        check_non_negative(data.y)
    elif getattr(NONLINEARITIES[est.nonlinearity], "positive", False):
        check_signed_for_positive_output(data, est.nonlinearity)
    return InMemoryData(data)
