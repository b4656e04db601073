"""The kernel comparison (the seed notebook's analysis): fit, score, tabulate, plot."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.utils import Bunch

from ._solvers import SOLVERS
from .estimator import STRFRegressor
from .metrics import cc, cc_norm
from .model_selection import train_valid_test_indices
from .significance import pairwise_comparisons

__all__ = ["compare_kernels", "default_variants", "beyond_linear_variants", "format_table",
           "format_pairs", "save_figures", "split_indices"]

# Label suffix of the rows that reproduce the seed notebook's training.
SEED_SUFFIX = " (seed method)"

def default_variants(kernels: Sequence[str] = ("vanilla", "separable", "parametric"), *,
                     seed_method: bool = True, max_epochs: int = 100) -> list[tuple[str, dict]]:
    """The fits of the main job: each kernel with skstrf's defaults and, optionally, with the
    seed's method (AdamW from a random start for ``max_epochs`` epochs without penalty, best
    validation epoch restored, no early stop).

    Returns a list of ``(label, STRFRegressor parameters)``.
    """
    variants = [(f"{k}", {"kernel": k}) for k in kernels]
    if seed_method:
        variants += [(f"{k}{SEED_SUFFIX}", {"kernel": k, "solver": "gradient", "init": "random",
                                              "patience": None, "max_epochs": max_epochs,
                                              "cv": None, "alpha": 0.0})
                     for k in kernels]
    return variants


# Optional rows of the main job beyond the linear STRF (``skstrf compare --variants ...``).
# They start from the closed-form STRF and fine-tune by gradient (benchmarks/beyond_linear.py).
BEYOND_LINEAR = {
    "ln": ("vanilla + LN (softplus, Poisson)",
           {"kernel": "vanilla", "nonlinearity": "softplus", "loss": "poisson"}),
    "ic_adaptation": ("vanilla + IC adaptation", {"kernel": "vanilla", "prefilter": "ic_adaptation"}),
    "adaptrans": ("vanilla + AdapTrans", {"kernel": "vanilla", "prefilter": "adaptrans"}),
    "ln_adaptrans": ("vanilla + AdapTrans + LN",
                     {"kernel": "vanilla", "prefilter": "adaptrans", "nonlinearity": "softplus",
                      "loss": "poisson"}),
}


def beyond_linear_variants(names: Sequence[str], *, dt_ms: float = 5.0,
                           freq_range: tuple[float, float] | None = None) -> list[tuple[str, dict]]:
    """Rows of :data:`BEYOND_LINEAR` ("ln", "ic_adaptation", "adaptrans", "ln_adaptrans").

    Parameters
    ----------
    names : sequence of str
        Which rows, in order.
    dt_ms : float, default=5.0
        Frame duration of the data, for the prefilters.
    freq_range : (float, float) or None, default=None
        Centre frequencies (Hz) of the data's lowest and highest band, for the prefilters;
        None keeps the estimator's default (500 Hz to 20 kHz).

    Returns
    -------
    list of (label, STRFRegressor parameters)
    """
    unknown = [n for n in names if n not in BEYOND_LINEAR]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; expected some of {sorted(BEYOND_LINEAR)}")
    variants = []
    for name in names:
        label, params = BEYOND_LINEAR[name]
        params = dict(params)
        if "prefilter" in params:
            params["dt_ms"] = float(dt_ms)
            if freq_range is not None:
                params["freq_range"] = tuple(float(f) for f in freq_range)
        variants.append((label, params))
    return variants


def split_indices(n_stimuli: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The seed's 14/3/3 stimulus split scaled to ``n_stimuli`` (train, valid, test).

    The same rule as :func:`skstrf.model_selection.train_valid_test_indices` (kept here
    under its old name). For 20 stimuli: 0-13 train, 14-16 validation, 17-19 test.
    """
    return train_valid_test_indices(n_stimuli)


def compare_kernels(
    X,
    y,
    *,
    train: Sequence[int],
    valid: Sequence[int],
    test: Sequence[int],
    variants: Sequence[tuple[str, dict]] | None = None,
    estimator: STRFRegressor | None = None,
    progress: Callable[[str], None] | None = print,
) -> Bunch:
    """Fit one STRF model per variant on the same split and score it on the test stimuli.

    Parameters
    ----------
    X : ndarray of shape (n_stimuli, n_times, n_freqs)
        Stimuli.
    y : ndarray of shape (n_stimuli, n_times, n_neurons, n_repeats)
        Responses with repeats.
    train, valid, test : sequence of int
        Stimulus indices. Each model is fitted on ``train`` and ``valid`` and scored on
        ``test``: gradient-trained models validate (early stopping) on exactly ``valid``;
        the closed-form solvers cross-validate their penalty over both (``cv``), or choose
        it on ``valid`` with ``cv=None``.
    variants : sequence of (str, dict), default=None
        Label and :class:`STRFRegressor` parameters of each fit; by default
        :func:`default_variants`.
    estimator : STRFRegressor, default=None
        Template whose parameters every fit shares (each variant's parameters override).
    progress : callable or None, default=print
        Called with a line of text before and after each fit.

    Returns
    -------
    result : Bunch
        ``rows`` (one dict per variant: name, solver, params_per_neuron, total_params,
        fit_s, epochs, test_cc, test_cc_norm), ``test_cc`` and ``test_cc_norm`` (label ->
        per-neuron arrays), ``estimators`` (label -> fitted estimator), ``labels``,
        ``best_cell`` (the neuron with the highest mean test cc_norm across variants) and
        ``pairs``: the paired comparison of every two variants across neurons
        (:func:`skstrf.significance.pairwise_comparisons`: per-cell differences, Wilcoxon
        signed-rank test, Holm-corrected).
    """
    X = np.asarray(X)
    y = np.asarray(y)
    train, valid, test = (np.asarray(i, dtype=int) for i in (train, valid, test))
    variants = default_variants() if variants is None else list(variants)
    labels = [label for label, _ in variants]
    if len(set(labels)) != len(labels):
        raise ValueError(f"variant labels must be unique; got {labels}")
    fit_idx = np.concatenate([train, valid])
    template = STRFRegressor() if estimator is None else estimator
    template = clone(template).set_params(validation_fraction=len(valid) / len(fit_idx))
    rows, per_cc, per_ccn, fitted = [], {}, {}, {}
    for label, params in variants:
        est = clone(template).set_params(**params)
        if progress:
            progress(f"fitting {label} ...")
        start = time.perf_counter()
        est.fit(X[fit_idx], y[fit_idx])
        elapsed = time.perf_counter() - start
        if est.valid_stimuli_.size and not np.array_equal(fit_idx[est.valid_stimuli_], valid):
            raise RuntimeError("internal error: the validation stimuli are not the requested ones")
        pred = est.predict(X[test])
        per_cc[label] = cc(y[test], pred, multioutput="raw_values")
        per_ccn[label] = cc_norm(y[test], pred, multioutput="raw_values")
        fitted[label] = est
        rows.append({
            "name": label,
            "kernel": est.kernel,
            "solver": SOLVERS[est.solver_].label,
            "params_per_neuron": int(est.n_params_per_neuron_),
            "total_params": int(est.n_params_per_neuron_ * est.n_neurons_),
            "fit_s": elapsed,
            "epochs": len(est.history_),
            "test_cc": float(np.nanmean(per_cc[label])),
            "test_cc_norm": float(np.nanmean(per_ccn[label])),
        })
        if progress:
            r = rows[-1]
            progress(f"  {r['solver']}, {r['epochs']} epoch(s), {elapsed:.1f} s: "
                     f"test cc_norm {r['test_cc_norm']:.3f}")
    stack = np.vstack([per_ccn[k] for k in labels])
    finite = np.isfinite(stack)
    mean_per_cell = np.where(finite.any(0), np.nansum(stack, 0) / np.maximum(finite.sum(0), 1), -np.inf)
    best_cell = int(np.argmax(mean_per_cell))
    pairs = pairwise_comparisons(per_ccn, pairs=_pairs(labels)) if len(labels) > 1 else []
    return Bunch(rows=rows, test_cc=per_cc, test_cc_norm=per_ccn, estimators=fitted,
                 best_cell=best_cell, labels=labels, pairs=pairs)


def format_table(rows: Sequence[dict]) -> str:
    """The seed's results table as text."""
    width = max([len("parameterization")] + [len(r["name"]) for r in rows])
    header = (f"{'parameterization':<{width}s} {'solver':>8s} {'params/neuron':>14s} {'total':>9s} "
              f"{'fit (s)':>8s} {'test cc (mean)':>16s} {'test cc_norm (mean)':>22s}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['name']:<{width}s} {r['solver']:>8s} {r['params_per_neuron']:>14,d} "
            f"{r['total_params']:>9,} {r['fit_s']:>8.1f} {r['test_cc']:>+16.3f} {r['test_cc_norm']:>+22.3f}"
        )
    return "\n".join(lines)


def save_figures(result: Bunch, output: str | Path, *, dt_ms: float = 5.0, freqs=None) -> list[Path]:
    """Write the comparison's figures and a JSON summary to ``output``; return their paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .plotting import plot_history, plot_paired_scores, plot_strfs

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    labels = result.labels
    paths = []

    # gradient fits as curves, closed-form fits (one epoch) as dotted levels
    fig, _ = plot_history({k: result.estimators[k] for k in labels})
    paths.append(out / "history.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    # per-cell scores of skstrf's own variants against each other, with the identity line
    own = [k for k in labels if not k.endswith(SEED_SUFFIX)] or labels
    fig, _ = plot_paired_scores({k: result.test_cc_norm[k] for k in own}, metric="test cc_norm")
    paths.append(out / "paired_scores.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    cell = result.best_cell
    panels, titles = [], []
    for k in labels:
        strf = result.estimators[k].strfs_[cell]
        # A two-channel (AdapTrans) STRF gets one panel per channel.
        channels = [("", strf)] if strf.ndim == 2 else [(f", {name}", s) for name, s in zip(("ON", "OFF"), strf)]
        for suffix, kernel in channels:
            panels.append(kernel)
            titles.append(f"{k}{suffix}\ncc_norm = {result.test_cc_norm[k][cell]:+.3f}")
    ncols = min(len(panels), 3)
    fig, _ = plot_strfs(
        panels, titles=titles,
        dt_ms=dt_ms, freqs=freqs, shared_clim=True, ncols=ncols,
        suptitle=f"Cell {cell}: same neuron, same data, different inductive biases",
    )
    paths.append(out / "best_cell_strfs.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    summary = {"rows": list(result.rows), "best_cell": cell,
               "pairs": [{key: _plain(row[key]) for key in ("model_a", "model_b", "n_better", "n_worse",
                                                           "n_tied", "median_difference", "statistic",
                                                           "pvalue", "pvalue_corrected")}
                         for row in result.get("pairs", [])],
               "test_cc_norm": {k: [None if not np.isfinite(v) else float(v) for v in result.test_cc_norm[k]]
                                for k in result.labels}}
    paths.append(out / "results.json")
    paths[-1].write_text(json.dumps(summary, indent=2))
    return paths


def format_pairs(pairs: Sequence) -> str:
    """One line per pair of variants: the paired comparison across neurons."""
    return "\n".join(row.summary for row in pairs)


def _plain(value):
    """A JSON-ready number (NaN as None)."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and not np.isfinite(value) else value



def _pairs(labels: Sequence[str]) -> list[tuple[str, str]]:
    """The variants compared pairwise: every two of skstrf's own rows, and each of them with
    its seed-method counterpart (not the seed rows among themselves)."""
    own = [label for label in labels if not label.endswith(SEED_SUFFIX)]
    pairs = [(a, b) for i, a in enumerate(own) for b in own[i + 1:]]
    pairs += [(label, label + SEED_SUFFIX) for label in own if label + SEED_SUFFIX in labels]
    if not pairs:  # only seed-method rows
        pairs = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1:]]
    return pairs
