"""skstrf's default against the ridge tools of the field, like with like, with 95% intervals.

Run from the repository root, in the benchmark environment (the peers, naplib and
brucezilany are not dependencies of skstrf; see ``benchmarks/README.md``)::

    nice -n 19 /work/peers-venv/bin/python benchmarks/peers.py            # every case
    nice -n 19 /work/peers-venv/bin/python benchmarks/peers.py --cases naplib auditory-nerve
    /work/peers-venv/bin/python benchmarks/peers.py --quick               # tiny, seconds

Like with like:

- **The same X.** One array per case is handed to every library as it is: no library gets
  a standardised, shifted or otherwise different X (a library's own internal
  preprocessing, e.g. MNE's centring, is part of the library). X is never built from a
  quantity only a generator knows (e.g. its background level).
- **The same folds and target.** Outer folds hold out whole stimuli (``KFold`` over
  stimuli) or, for one continuous recording, contiguous blocks (``ContiguousBlocks``);
  every library fits the same training stimuli and predicts the same held-out ones, each
  held-out stimulus alone. Peers fit the PSTH (mean over repeats); skstrf gets ``y`` with
  its repeats (it fits their mean).
- **Each library chooses its own penalty on the training data only.** skstrf: its default
  (``STRFRegressor(n_lags=...)``: inner cross-validation of its own). mTRFpy:
  ``TRF.train`` with a list of lambdas (its k-fold cross-validation over trials).
  himalaya: ``RidgeCV`` with group folds over trials. MNE has no built-in search: a loop
  over the alphas, scored by the mean Pearson r over neurons on the held-out inner trials,
  then a refit of ``ReceptiveField(estimator=TimeDelayingRidge(alpha))`` on all training
  trials. The inner loop computes TimeDelayingRidge's correlation matrices once per inner
  split and solves for each alpha with MNE's own functions (``_compute_corrs`` then
  ``_fit_corrs``, the two steps of ``TimeDelayingRidge.fit``, split, as MNE's comment
  there says, so that penalties can be tested without recomputing); ``--quick`` checks that
  this gives the coefficients of ``TimeDelayingRidge.fit``. The peers search the same
  amount of shrinkage: alpha = ``logspace(-4, 2, 13)`` x training frames x the mean
  variance of the training frames' bands (their ridge penalties act on the sums of
  squares of X as given); mTRFpy's lambda is that divided by the number of trials (its
  covariances are averages over trials) and by its sampling rate (its solver multiplies
  it back). Inner folds: 5 over stimuli (fewer when there are fewer training stimuli), 4
  contiguous chunks of a continuous recording's training frames.
- **The same metric.** ``skstrf.metrics``: ``cc_norm`` where the case has repeats,
  ``cc`` where it has one; per neuron, pooled over all held-out frames; mean over neurons.
- **History.** The table says what each library puts before the first frame of a stimulus
  (see ``HISTORY``, with where in each library's code it is done), and a first table
  measures it: how far each library's held-out predictions move when X becomes X + 10
  (:func:`offset_check`).
- **Intervals.** 95% percentile intervals by a bootstrap over the held-out stimuli (the
  held-out blocks of a continuous recording): stimuli are drawn with replacement, the
  per-neuron score recomputed on the pooled frames of the draw (``skstrf.metrics.ScoreSums``),
  averaged over neurons. The difference to skstrf is bootstrapped paired (the same draws).

Cases: "songs" and "continuous" (``make_realistic_dataset``, X as generated: log10 power),
"ns1-like" (``make_strf_dataset``, fit on 17 stimuli, scored on 3), "naplib" (naplib's
sample speech, 128 bands at 10 ms, X as given, 30 lags, one repeat: ``cc``) and
"auditory-nerve" (the Bruce-Zilany-Carney model's fibres, X from the case's front end, 20
lags at 5 ms; skipped with a message while the front end is not available). Seconds:
wall-clock time of one fit including its penalty search, mean over the outer folds.

A library that cannot run a case says so in the table instead of a score: himalaya's
``RidgeCV`` is skipped where :func:`himalaya_cost` estimates more than ``--max-gb`` or
``--max-tflop`` (naplib). ``--work DIR`` keeps each library's predictions so that a long
run resumes after an interruption (an entry is redone when the data, the folds or the
library's code change).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import HEADLINE_SEED, finish_section, machine_info, markdown_table, set_threads
from sklearn.model_selection import KFold

from skstrf import STRFRegressor
from skstrf.datasets import make_realistic_dataset, make_strf_dataset
from skstrf.metrics import ScoreSums, cc_norm_from_sums
from skstrf.model_selection import ContiguousBlocks

sys.path.insert(0, str(Path(__file__).resolve().parent))
import third_party  # noqa: E402  (benchmarks/ is not a package)

PER_FRAME_ALPHAS = np.logspace(-4, 2, 13)
FS = 100  # nominal sampling rate for the libraries that want one; lags are set in frames
N_BOOT = 2000
SKSTRF = "skstrf STRFRegressor() defaults"


def causal_lags(x: np.ndarray, n_lags: int) -> np.ndarray:
    """Lagged design (n_times, n_freqs * n_lags) of one trial: ``[t, f*L + k] = x[t - k, f]``,
    zero before the trial's start (skstrf's column order)."""
    n_times, n_freqs = x.shape
    out = np.zeros((n_times, n_freqs, n_lags))
    for k in range(n_lags):
        out[k:, :, k] = x[:n_times - k]
    return out.reshape(n_times, -1)


def _groups(trials: list[np.ndarray], n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Trial-index folds (contiguous KFold over the list of trials)."""
    return list(KFold(min(n_splits, len(trials))).split(np.arange(len(trials))))


def _mean_r(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean over neurons of the Pearson r of (frames, neurons) arrays."""
    y = y - y.mean(0)
    pred = pred - pred.mean(0)
    den = np.sqrt((y**2).sum(0) * (pred**2).sum(0))
    return float(np.nanmean((y * pred).sum(0) / np.where(den > 0, den, np.nan)))


def alpha_grid(xs: list[np.ndarray]) -> np.ndarray:
    """The peers' penalties on sums over frames: per-frame grid x frames x mean band variance."""
    frames = np.concatenate(xs)
    return PER_FRAME_ALPHAS * len(frames) * float(np.mean(frames.var(axis=0)))


# --- what each library puts before a stimulus's first frame -------------------------------

def skstrf_history() -> str:
    """skstrf's history rule, read from the estimator (its parameters, else its docstring)."""
    params = STRFRegressor().get_params()
    for key in ("history", "lead_in", "padding", "history_fill"):
        if key in params:
            return f"`{key}={params[key]!r}` (STRFRegressor's default; see its docstring)"
    doc = " ".join((STRFRegressor.__doc__ or "").split())
    if "history before each stimulus is zero in X's units" in doc:
        return "zero in X's units, fit and predict (STRFRegressor docstring, Notes)"
    return "NOT RECOGNISED by peers.py: read STRFRegressor's docstring and update skstrf_history()"


HISTORY = {
    "MNE": ("fit: each band's training mean (TimeDelayingRidge centres X, then its correlations "
            "zero-pad: mne/decoding/time_delaying_ridge.py `_compute_corrs`; MNE's epochs must be of "
            "equal length, so this harness concatenates ragged training trials and a trial's history "
            "in fit is the previous trial's end); predict: zero in X's units "
            "(`TimeDelayingRidge.predict` convolves the uncentred X)"),
    "mTRFpy": "zero in X's units, fit and predict (mtrf/matrices.py `lag_matrix`, `zeropad=True` default)",
    "himalaya": ("zero in X's units, fit and predict (himalaya has no delay step; this harness's "
                 "`causal_lags`; `RidgeCV(fit_intercept=True)` centres the lagged columns)"),
}


# --- the peers: fit(list of (x, psth) training trials, n_lags) -> predict(list of x) -----

def _mne_input(xs, ps, sel):
    """MNE's (n_times, n_epochs, n_features) input: epochs when lengths agree, else one
    concatenated series (what MNE users do with ragged trials)."""
    if len({len(xs[i]) for i in sel}) == 1:
        return np.stack([xs[i] for i in sel], axis=1), np.stack([ps[i] for i in sel], axis=1)
    return np.concatenate([xs[i] for i in sel])[:, None], np.concatenate([ps[i] for i in sel])[:, None]


def _mne_model(alpha, n_lags):
    from mne.decoding import ReceptiveField, TimeDelayingRidge

    tdr = TimeDelayingRidge(0.0, (n_lags - 1) / FS, FS, alpha=alpha, fit_intercept=True)
    return ReceptiveField(0.0, (n_lags - 1) / FS, FS, estimator=tdr, scoring="corrcoef")


def _mne_alpha_path(X, Y, n_lags, alphas):
    """TimeDelayingRidge's (coef, intercept) for every alpha from one correlation pass."""
    from mne.decoding.time_delaying_ridge import _compute_corrs, _fit_corrs

    cov, x_y, n_ch, x_offset, y_offset = _compute_corrs(X, Y, 0, n_lags, None, True, True)
    for alpha in alphas:
        coef = _fit_corrs(cov, x_y, n_ch, "ridge", alpha, n_ch)
        yield coef, y_offset - np.dot(x_offset, coef.sum(-1).T)


def fit_mne(xs, ps, n_lags, n_splits, check=False):
    from mne.decoding import TimeDelayingRidge

    alphas = alpha_grid(xs)
    scores = np.zeros(len(alphas))
    for train, test in _groups(xs, n_splits):
        X, Y = _mne_input(xs, ps, train)
        # A fitted TimeDelayingRidge to predict with: its coefficients are replaced by each
        # alpha's (fitting on a few frames only sets scikit-learn's fitted state).
        holder = TimeDelayingRidge(0.0, (n_lags - 1) / FS, FS, alpha=1.0, fit_intercept=True)
        holder.fit(X[: 2 * n_lags], Y[: 2 * n_lags])
        held = np.concatenate([ps[i] for i in test])
        for a, (coef, intercept) in enumerate(_mne_alpha_path(X, Y, n_lags, alphas)):
            if check and a == 0:
                ref = TimeDelayingRidge(0.0, (n_lags - 1) / FS, FS, alpha=alphas[0], fit_intercept=True).fit(X, Y)
                np.testing.assert_allclose(coef, ref.coef_, rtol=1e-10, atol=1e-12 * np.abs(ref.coef_).max())
                np.testing.assert_allclose(intercept, ref.intercept_, rtol=1e-10, atol=1e-12)
            holder.coef_, holder.intercept_ = coef, intercept
            pred = np.concatenate([np.asarray(holder.predict(xs[i])).reshape(len(xs[i]), -1) for i in test])
            scores[a] += _mean_r(held, pred)
    model = _mne_model(alphas[int(np.argmax(scores))], n_lags).fit(*_mne_input(xs, ps, range(len(xs))))
    return lambda new: [np.asarray(model.predict(x)).reshape(len(x), -1) for x in new]


def fit_mtrf(xs, ps, n_lags, n_splits, check=False):
    from mtrf.model import TRF

    lambdas = alpha_grid(xs) / len(xs) / FS
    trf = TRF(direction=1)
    trf.train(list(xs), list(ps), FS, 0.0, (n_lags - 1) / FS, list(lambdas),
              k=min(n_splits, len(xs)), verbose=False, seed=0)
    return lambda new: [np.asarray(trf.predict(stimulus=[x])[0]).reshape(len(x), -1) for x in new]


def fit_himalaya(xs, ps, n_lags, n_splits, check=False):
    from himalaya.ridge import RidgeCV

    design = np.concatenate([causal_lags(x, n_lags) for x in xs])
    target = np.concatenate(ps)
    trial = np.repeat(np.arange(len(xs)), [len(x) for x in xs])
    folds = [(np.flatnonzero(np.isin(trial, tr)), np.flatnonzero(np.isin(trial, te)))
             for tr, te in _groups(xs, n_splits)]
    # One alpha at a time: himalaya's own memory knob (same result); by default it holds an
    # (n_alphas, n_features, n_train_frames) array at once.
    model = RidgeCV(alphas=alpha_grid(xs), cv=folds, fit_intercept=True, solver_params={"n_alphas_batch": 1})
    model.fit(design, target)
    return lambda new: [np.asarray(model.predict(causal_lags(x, n_lags))).reshape(len(x), -1) for x in new]


PEERS: dict[str, tuple[str, Callable]] = {
    "MNE ReceptiveField + TimeDelayingRidge, alpha by inner CV": ("MNE", fit_mne),
    "mTRFpy TRF.train, lambda by its CV": ("mTRFpy", fit_mtrf),
    "himalaya RidgeCV on a lagged design": ("himalaya", fit_himalaya),
}


# --- outer folds: out-of-fold predictions of every library --------------------------------

def _psth(y: np.ndarray, x_ndim: int) -> np.ndarray:
    if y.ndim == x_ndim:  # no repeat axis: y is already the response
        return y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.nanmean(y, axis=-1)


def run_stimuli(name, X, y, folds, n_lags, n_splits, check=False):
    """Stimulus layout: one library's out-of-fold predictions; each fold's training stimuli
    are trials, each test stimulus is predicted alone.

    Returns
    -------
    pred : ndarray of shape (n_stimuli, n_times, n_neurons)
    seconds : list of float
        One fit (with its penalty search) per outer fold.
    """
    lengths = (~np.isnan(X[..., 0])).sum(1)
    P = _psth(y, X.ndim)
    pred = np.full(P.shape, np.nan)
    seconds = []
    for train, test in folds:
        start = time.perf_counter()
        if name in PEERS:
            xs = [X[s, :lengths[s]] for s in train]
            ps = [P[s, :lengths[s]] for s in train]
            predict = PEERS[name][1](xs, ps, n_lags, n_splits, check)
            seconds.append(time.perf_counter() - start)
            for s, p in zip(test, predict([X[s, :lengths[s]] for s in test])):
                pred[s, :lengths[s]] = p
        else:
            est = STRFRegressor(n_lags=n_lags, random_state=0).fit(X[train], y[train])
            seconds.append(time.perf_counter() - start)
            pred[test] = est.predict(X[test])
    return pred, seconds


def run_continuous(name, X, y, folds, n_lags, n_splits, check=False):
    """One recording: training frames (with their junction) cut into 4 chunks as trials; each
    test block is predicted from the whole recording, so only the recording's first frames
    lack history. Returns as :func:`run_stimuli`."""
    P = _psth(y, X.ndim)
    pred = np.full(P.shape, np.nan)
    seconds = []
    for train, test in folds:
        start = time.perf_counter()
        if name in PEERS:
            chunks = np.array_split(np.arange(len(train)), 4)
            xs = [X[train][c] for c in chunks]
            ps = [P[train][c] for c in chunks]
            predict = PEERS[name][1](xs, ps, n_lags, n_splits, check)
            seconds.append(time.perf_counter() - start)
            pred[test] = predict([X])[0][test]
        else:
            est = STRFRegressor(n_lags=n_lags, random_state=0).fit(X[train], y[train])
            seconds.append(time.perf_counter() - start)
            pred[test] = est.predict(X)[test]
    return pred, seconds


def himalaya_cost(X, folds, n_lags, n_splits) -> tuple[float, float]:
    """Peak memory (GB) and work (TFLOP) of himalaya's RidgeCV on the largest outer fold.

    Its svd solver decomposes each inner training design and forms, per alpha, the
    (n_features, n_train) resolution matrix and its (n_test, n_train) product with the test
    design: cheap when frames and features are few (fMRI), not at 10^4-10^5 frames.
    """
    n_features = X.shape[-1] * n_lags
    frames = (~np.isnan(X[..., 0])).sum(-1) if X.ndim == 3 else None
    n_train = max(int(frames[tr].sum()) if frames is not None else len(tr) for tr, _ in folds)
    n_in = n_train * (n_splits - 1) / n_splits
    n_out = n_train / n_splits
    a = len(PER_FRAME_ALPHAS)
    gb = 8 * (3 * n_train * n_features + n_features * n_in + n_out * n_in) / 1e9
    flop = n_splits * (4 * n_in * n_features**2 + a * 2 * (n_features**2 * n_in + n_out * n_features * n_in))
    flop += 4 * n_train * n_features**2 + 2 * n_features**2 * n_train  # the refit on all frames
    return gb, flop / 1e12


def library_version(name: str) -> str:
    """What the cached predictions of a library depend on: its version, or skstrf's source."""
    if name == SKSTRF:
        import hashlib

        import skstrf

        h = hashlib.sha256()
        for path in sorted(Path(skstrf.__file__).parent.rglob("*.py")):
            h.update(path.read_bytes())
        return "skstrf source " + h.hexdigest()[:16]
    package = {"MNE": "mne", "mTRFpy": "mtrf", "himalaya": "himalaya"}[PEERS[name][0]]
    return f"{package} {third_party._version(package)}"


# --- scores with bootstrap intervals --------------------------------------------------------

def _units(y: np.ndarray, pred: np.ndarray, units: list[np.ndarray], x_ndim: int) -> list[ScoreSums]:
    """skstrf's score sums of each bootstrap unit (held-out stimuli, or frame blocks)."""
    if y.ndim == x_ndim:  # one repeat: give the repeat axis skstrf's metrics expect
        y = y[..., None]
    if x_ndim == 2:  # one recording: a unit is a block of frames, as a one-stimulus set
        return [ScoreSums.of(y[None, idx], pred[None, idx]) for idx in units]
    return [ScoreSums.of(y[idx], pred[idx]) for idx in units]


def _merged(sums: list[ScoreSums], draw: np.ndarray) -> ScoreSums:
    out = sums[draw[0]]
    for i in draw[1:]:
        out = out.merge(sums[i])
    return out


def score_table(y, preds, seconds, units, x_ndim, n_boot=N_BOOT, seed=0):
    """Rows: pooled score, 95% bootstrap interval, paired difference to skstrf and its interval."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(units), (n_boot, len(units)))
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_lib = {name: _units(y, pred, units, x_ndim) for name, pred in preds.items()}
        point = {name: float(np.nanmean(cc_norm_from_sums(_merged(s, np.arange(len(units))), "raw_values")))
                 for name, s in per_lib.items()}
        boot = {name: np.array([np.nanmean(cc_norm_from_sums(_merged(s, d), "raw_values")) for d in draws])
                for name, s in per_lib.items()}
    for name in preds:
        diff = boot[name] - boot[SKSTRF]
        lo, hi = np.nanpercentile(boot[name], [2.5, 97.5])
        row = {"library": name, "score": point[name], "ci": f"[{lo:.3f}, {hi:.3f}]",
               "seconds": float(np.mean(seconds[name])),
               "history": skstrf_history() if name == SKSTRF else HISTORY[PEERS[name][0]]}
        if name != SKSTRF:
            dlo, dhi = np.nanpercentile(diff, [2.5, 97.5])
            row["diff"] = f"{point[name] - point[SKSTRF]:+.3f} [{dlo:+.3f}, {dhi:+.3f}]"
        rows.append(row)
    return rows


def table(rows: list[dict], metric: str) -> str:
    return markdown_table(rows, [
        ("library", "library", ""), ("score", f"held-out {metric}", ".3f"), ("ci", "95% interval", ""),
        ("diff", "minus skstrf [95% interval]", ""), ("seconds", "fit s (incl. penalty search)", ".3g"),
        ("history", "history before each stimulus", "")])


# --- the cases ---------------------------------------------------------------------------

def case_songs(args):
    n_neurons, n_lags = (2, 8) if args.quick else (8, 20)
    d = make_realistic_dataset(n_neurons=n_neurons, random_state=args.seed)
    X, y = (d.X[:6], d.y[:6]) if args.quick else (d.X, d.y)
    folds = list(KFold(2 if args.quick else 5).split(X))
    title = (f"Songs (make_realistic_dataset, seed {args.seed}): {n_neurons} neurons, {len(X)} songs x 32 "
             f"log-mel bands (X as generated, log10 power), {len(folds)}-fold KFold over songs, {n_lags} lags")
    return title, "cc_norm", run_stimuli, X, y, folds, n_lags, 5, [np.array([s]) for s in range(len(X))]


def case_continuous(args):
    d = make_realistic_dataset("continuous", random_state=args.seed)
    folds = list(ContiguousBlocks(2 if args.quick else 5).split(d.X))
    title = (f"Continuous (make_realistic_dataset, seed {args.seed}): 5 units, {len(d.X)} frames x 2 "
             f"envelopes (X as generated), {len(folds)} contiguous blocks, 20 lags")
    return title, "cc_norm", run_continuous, d.X, d.y, folds, 20, 4, [te for _, te in folds]


def case_ns1(args):
    sizes = (dict(n_stimuli=10, n_times=200, n_freqs=8, n_neurons=6) if args.quick else
             dict(n_stimuli=20, n_times=999, n_freqs=34, n_neurons=119))
    d = make_strf_dataset(**sizes, random_state=args.seed)
    train = np.concatenate([d.train, d.valid])
    title = (f"NS1-like (make_strf_dataset, seed {args.seed}): {sizes['n_stimuli']} stimuli x "
             f"{sizes['n_times']} frames x {sizes['n_freqs']} bands, {sizes['n_neurons']} neurons, 15 lags; "
             f"fit on {len(train)} stimuli, scored on {len(d.test)}")
    return title, "cc_norm", run_stimuli, d.X, d.y, [(train, d.test)], 15, 5, [np.array([s]) for s in d.test]


def case_naplib(args):
    d = third_party.load_naplib_speech()
    X, y, n_lags = d.X, d.y, 30
    if args.quick:  # 4 excerpts, their first 8 s, every 8th band
        X, y, n_lags = X[:4, :800, ::8], y[:4, :800], 5
    folds = list(KFold(2 if args.quick else 5).split(X))
    title = (f"naplib sample speech: {len(X)} excerpts ({(~np.isnan(X[..., 0])).sum() / 100:.0f} s) x "
             f"{X.shape[2]} auditory-spectrogram bands as given (non-negative, silence at 0), 10 ms; "
             f"{y.shape[2]} channels simulated by naplib's authors, one repeat (score: cc); "
             f"{len(folds)}-fold KFold over excerpts, {n_lags} lags")
    return title, "cc", run_stimuli, X, y, folds, n_lags, 5, [np.array([s]) for s in range(len(X))]


def case_auditory_nerve(args):
    sizes = third_party.QUICK_AN if args.quick else {}
    d = third_party.make_auditory_nerve_case(cache=args.cache, **sizes)
    if d.X is None:
        return None
    X, y, n_lags = d.X, d.y, (8 if args.quick else 20)
    folds = list(KFold(len(X) if args.quick else 4).split(X))
    title = (f"Auditory nerve (Bruce-Zilany-Carney): {y.shape[2]} fibres, {len(X)} stimuli "
             f"({(~np.isnan(X[..., 0])).sum() * d.dt_ms / 1000:.0f} s), {y.shape[3]} repeats, 5 ms; X: "
             f"{X.shape[2]} bands, the case's front end `{d.front_end}` of the waveforms (lead-in cut "
             f"off); {len(folds)}-fold KFold over stimuli, {n_lags} lags")
    return title, "cc_norm", run_stimuli, X, y, folds, n_lags, 5, [np.array([s]) for s in range(len(X))]


CASES = {"songs": case_songs, "continuous": case_continuous, "ns1-like": case_ns1,
         "naplib": case_naplib, "auditory-nerve": case_auditory_nerve}


def warm_up() -> None:
    """One untimed tiny fit per library, so that imports and first-call set-up are not timed."""
    import mne

    mne.set_log_level("ERROR")
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((60, 3)) for _ in range(4)]
    ps = [rng.standard_normal((60, 2)) for _ in range(4)]
    for _, fit in PEERS.values():
        fit(xs, ps, 3, 2, True)(xs[:1])
    X, y = np.stack(xs), rng.poisson(1.0, (4, 60, 2, 3)).astype(float)
    STRFRegressor(n_lags=3).fit(X, y).predict(X)


def offset_check(c: float = 10.0, n_lags: int = 4) -> str:
    """Measured, not cited: how each library's held-out predictions move when X becomes X + c.

    Tiny data (6 trials of 80 frames, 3 bands of unit variance, 2 linear neurons plus
    noise); every library fits 4 trials and predicts 2, once with X and once with X + c
    (the same c in every band, as a dB reference would shift). A library whose history
    before a trial is each band's training mean in fit and predict changes nothing; one that
    puts zero in X's units there changes its fit, so its predictions move everywhere; MNE
    (training mean in fit, zero in predict) moves only in the first ``n_lags - 1`` frames.
    Changes are relative to the standard deviation of the predictions with X.
    """
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((80, 3)) for _ in range(6)]
    w = rng.standard_normal((3 * n_lags, 2))
    ps = [causal_lags(x, n_lags) @ w + 0.3 * rng.standard_normal((80, 2)) for x in xs]
    train, test = slice(0, 4), slice(4, 6)

    def predictions(shift):
        xx = [x + shift for x in xs]
        out = {SKSTRF: STRFRegressor(n_lags=n_lags, random_state=0)
               .fit(np.stack(xx[train]), np.stack(ps[train])).predict(np.stack(xx[test]))}
        for name, (_, fit) in PEERS.items():
            out[name] = np.stack(fit(xx[train], ps[train], n_lags, 2)(xx[test]))
        return out

    base, moved = predictions(0.0), predictions(c)
    rows = []
    for name in base:
        scale = base[name].std()
        change = np.abs(moved[name] - base[name]) / scale
        rows.append({"library": name, "early": float(change[:, : n_lags - 1].max()),
                     "late": float(change[:, n_lags - 1:].max())})
    return markdown_table(rows, [
        ("library", "library", ""),
        ("early", f"max change, first {n_lags - 1} frames of a held-out trial", ".2g"),
        ("late", "max change, later frames", ".2g")])


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "uptime unavailable"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--seed", type=int, default=HEADLINE_SEED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", help="cache folder of the auditory-nerve case (see third_party.py)")
    parser.add_argument("--n-boot", type=int, default=N_BOOT)
    parser.add_argument("--quick", action="store_true",
                        help="tiny data, to check that it runs (and that MNE's cached alpha path equals its fit)")
    parser.add_argument("--markdown", help="write the section to this file")
    parser.add_argument("--work", help="folder keeping each library's predictions (verified, atomic), so "
                        "that an interrupted run resumes; a library's entry is redone when its code changes")
    parser.add_argument("--max-gb", type=float, default=6.0, help="skip himalaya above this memory estimate")
    parser.add_argument("--max-tflop", type=float, default=30.0, help="skip himalaya above this work estimate")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    warnings.simplefilter("ignore")  # convergence and constant-band warnings: scores only
    warm_up()
    before = machine_info()
    sections = [f"Load at the start: `{uptime()}`.",
                f"### Where zero is: held-out predictions after X -> X + 10 (measured on tiny data)\n\n"
                f"{offset_check()}\n\nRelative to the predictions' standard deviation; 0 means the "
                "library's fit and predictions do not depend on where zero is in X."]
    print(sections[-1], flush=True)
    for name in args.cases:
        start = time.perf_counter()
        built = CASES[name](args)
        if built is None:
            sections.append(f"### {name}\n\nSkipped: the case has no X (its front end, skstrf.audio, "
                            "is not available in this environment).")
            continue
        title, metric, run, X, y, folds, n_lags, n_splits, units = built
        preds, seconds, notes = {}, {}, []
        for lib in [SKSTRF, *PEERS]:
            if lib in PEERS and PEERS[lib][0] == "himalaya":
                gb, tflop = himalaya_cost(X, folds, n_lags, n_splits)
                if gb > args.max_gb or tflop > args.max_tflop:
                    notes.append(f"{lib}: not run; its RidgeCV would need about {gb:.2g} GB and {tflop:.2g} "
                                 f"TFLOP per outer fold here (limits --max-gb {args.max_gb:g}, --max-tflop "
                                 f"{args.max_tflop:g}; see himalaya_cost)")
                    print(notes[-1], flush=True)
                    continue
            lib_start = time.perf_counter()
            params = {"case": name, "title": title, "library": lib, "version": library_version(lib),
                      "data": third_party._array_digest({"X": X, "y": y}),
                      "folds": [[tr.tolist(), te.tolist()] for tr, te in folds], "n_lags": n_lags,
                      "n_splits": n_splits}

            def fit_all(lib=lib):
                pred, secs = run(lib, X, y, folds, n_lags, n_splits, check=args.quick)
                return {"pred": pred, "seconds": np.asarray(secs)}, {"load": os.getloadavg()}

            if args.work:  # resumable: each library's predictions kept, verified, until its code changes
                got, _, hit = third_party.cached("peers-" + name, params, fit_all, args.work, log=print)
            else:
                got, hit = fit_all()[0], False
            preds[lib], seconds[lib] = got["pred"], got["seconds"]
            print(f"  {name}: {lib} {'from --work' if hit else 'fitted'} in "
                  f"{time.perf_counter() - lib_start:.0f} s; load `{uptime()}`", flush=True)
        rows = score_table(y, preds, seconds, units, X.ndim, n_boot=args.n_boot)
        rows += [{"library": lib, "ci": "not run (below)", "history": HISTORY[PEERS[lib][0]]}
                 for lib in PEERS if lib not in preds]
        unit = "held-out blocks" if X.ndim == 2 else "held-out stimuli"
        sections.append(
            f"### {title}\n\n{table(rows, metric)}\n\n95% intervals: bootstrap over the {len(units)} "
            f"{unit} ({args.n_boot} draws). " + "".join(n + ". " for n in notes)
            + f"Case took {time.perf_counter() - start:.0f} s; load after: `{uptime()}`.")
        print(sections[-1], flush=True)
    after = machine_info()
    finish_section("\n\n".join(sections), args, before, after)


if __name__ == "__main__":
    main()
