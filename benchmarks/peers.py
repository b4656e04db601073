"""skstrf's default against the ridge tools of the field, side by side in one run.

Run from the repository root, in an environment with the peers installed (they are not
dependencies of skstrf)::

    python3 -m venv ../peers-venv
    ../peers-venv/bin/pip install "torch==2.13.0" -e . mne mtrf himalaya
    ../peers-venv/bin/python benchmarks/peers.py                 # full sizes
    ../peers-venv/bin/python benchmarks/peers.py --quick         # tiny sizes, to check it runs

Rows: MNE ``ReceptiveField`` with ``TimeDelayingRidge``, its alpha chosen by an inner
cross-validation over the training trials (MNE has none built in: a loop over the alphas,
mean Pearson r over neurons on the held-out trials, then a refit on all training trials);
mTRFpy ``TRF.train`` with a list of lambdas (its own k-fold cross-validation over trials);
himalaya ``RidgeCV`` on a causal lagged design (lags ``t - L + 1 .. t`` of the same trial,
zero history), its alpha per neuron by group k-fold over trials; ``skstrf.STRFRegressor``
with its defaults (vanilla kernel) and ``n_lags``.

Every peer gets the same training trials, the stimulus z-scored per band on the training
frames, the PSTH (mean over repeats) as target, and the same penalty grid: skstrf's default
per-frame grid ``logspace(-4, 2, 13)`` times the training frames (mTRFpy: divided by the
sampling rate, which its solver multiplies back), so that every library searches the same
amount of shrinkage. Inner cross-validation: 5 folds over songs or stimuli, 4 contiguous
chunks of a continuous recording.

Modes: "songs" (``make_realistic_dataset``, 20 ragged songs, 20 lags; 5-fold ``KFold`` over
songs, pooled out-of-fold predictions); "continuous" (the 7 s recording, 20 lags, 5
``ContiguousBlocks``, each test block predicted from the whole stimulus); "NS1-like"
(``make_strf_dataset``, 20 stimuli x 999 frames x 34 bands, 119 neurons, 15 lags; fit on
its train + valid stimuli, 17, scored on its 3 test stimuli). The realistic X is the
generator's log power minus each band's level of silence (``data.X - data.silence``): every
library zero-pads the history before a stimulus, and this makes that zero the silence the
cells heard. Score: ``skstrf.metrics.cc_norm``
per neuron (pooled over the scored frames), mean over neurons. Seconds: wall-clock time
of one fit including its penalty search, mean over the outer folds.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
from _common import HEADLINE_SEED, finish_section, machine_info, markdown_table, set_threads
from sklearn.model_selection import KFold

from skstrf import STRFRegressor
from skstrf.datasets import make_realistic_dataset, make_strf_dataset
from skstrf.metrics import cc_norm
from skstrf.model_selection import ContiguousBlocks

PER_FRAME_ALPHAS = np.logspace(-4, 2, 13)
FS = 100  # nominal sampling rate for the libraries that want one; lags are set in frames


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


# --- the peers: fit(list of (x, psth) training trials, n_lags) -> predict(list of x) -----

def fit_mne(xs, ps, n_lags, n_splits):
    from mne.decoding import ReceptiveField, TimeDelayingRidge

    def make(alpha):
        tdr = TimeDelayingRidge(0.0, (n_lags - 1) / FS, FS, alpha=alpha, fit_intercept=True)
        return ReceptiveField(0.0, (n_lags - 1) / FS, FS, estimator=tdr, scoring="corrcoef")

    def fit(model, sel):
        if len({len(xs[i]) for i in sel}) == 1:  # equal lengths: MNE's epochs axis
            X = np.stack([xs[i] for i in sel], axis=1)
            Y = np.stack([ps[i] for i in sel], axis=1)
        else:  # ragged trials: one concatenated series, as MNE users do
            X = np.concatenate([xs[i] for i in sel])[:, None]
            Y = np.concatenate([ps[i] for i in sel])[:, None]
        return model.fit(X, Y)

    n_frames = sum(len(x) for x in xs)
    alphas = PER_FRAME_ALPHAS * n_frames
    scores = np.zeros(len(alphas))
    for train, test in _groups(xs, n_splits):
        held = np.concatenate([ps[i] for i in test])
        for a, alpha in enumerate(alphas):
            model = fit(make(alpha), train)
            pred = np.concatenate([np.atleast_2d(model.predict(xs[i]).reshape(len(xs[i]), -1))
                                   for i in test])
            scores[a] += _mean_r(held, pred)
    model = fit(make(alphas[int(np.argmax(scores))]), range(len(xs)))
    return lambda new: [model.predict(x).reshape(len(x), -1) for x in new]


def fit_mtrf(xs, ps, n_lags, n_splits):
    from mtrf.model import TRF

    n_frames = sum(len(x) for x in xs)
    trf = TRF(direction=1)
    trf.train(list(xs), list(ps), FS, 0.0, (n_lags - 1) / FS,
              list(PER_FRAME_ALPHAS * n_frames / FS), k=min(n_splits, len(xs)), verbose=False, seed=0)
    return lambda new: [np.asarray(trf.predict(stimulus=[x])[0]) for x in new]


def fit_himalaya(xs, ps, n_lags, n_splits):
    from himalaya.ridge import RidgeCV

    design = np.concatenate([causal_lags(x, n_lags) for x in xs])
    target = np.concatenate(ps)
    trial = np.repeat(np.arange(len(xs)), [len(x) for x in xs])
    folds = [(np.flatnonzero(np.isin(trial, tr)), np.flatnonzero(np.isin(trial, te)))
             for tr, te in _groups(xs, n_splits)]
    model = RidgeCV(alphas=PER_FRAME_ALPHAS * len(design), cv=folds, fit_intercept=True)
    model.fit(design, target)
    return lambda new: [np.asarray(model.predict(causal_lags(x, n_lags))) for x in new]


PEERS: dict[str, Callable] = {
    "MNE ReceptiveField + TimeDelayingRidge, alpha by inner CV": fit_mne,
    "mTRFpy TRF.train, lambda by its CV": fit_mtrf,
    "himalaya RidgeCV on a lagged design": fit_himalaya,
}


# --- the modes: outer folds of (training trials, prediction of the scored frames) --------

def _psth(y: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.nanmean(y, axis=-1)


def _zscore(train_xs: list[np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    frames = np.concatenate(train_xs)
    mean, std = frames.mean(0), frames.std(0)
    std = np.where(std > 0, std, 1.0)
    return lambda x: (x - mean) / std


def run_stimuli(X, y, folds, n_lags, n_splits):
    """Stimulus layout: each fold's training stimuli are trials; test stimuli predicted alone."""
    lengths = (~np.isnan(X[..., 0])).sum(1)
    P = _psth(y)
    rows = {}
    for name in ["skstrf STRFRegressor() defaults (vanilla)", *PEERS]:
        pred = np.full(P.shape, np.nan)
        seconds = []
        for train, test in folds:
            start = time.perf_counter()
            if name in PEERS:
                z = _zscore([X[s, :lengths[s]] for s in train])
                xs = [z(X[s, :lengths[s]]) for s in train]
                ps = [P[s, :lengths[s]] for s in train]
                predict = PEERS[name](xs, ps, n_lags, n_splits)
                seconds.append(time.perf_counter() - start)
                for s, p in zip(test, predict([z(X[s, :lengths[s]]) for s in test])):
                    pred[s, :lengths[s]] = p
            else:
                est = STRFRegressor(n_lags=n_lags, random_state=0).fit(X[train], y[train])
                seconds.append(time.perf_counter() - start)
                pred[test] = est.predict(X[test])
        scored = np.unique(np.concatenate([te for _, te in folds]))
        rows[name] = _score(y[scored], pred[scored], seconds)
    return rows


def run_continuous(X, y, folds, n_lags, n_splits):
    """One recording: training frames (with their junction) cut into chunks as trials."""
    P = _psth(y)
    rows = {}
    for name in ["skstrf STRFRegressor() defaults (vanilla)", *PEERS]:
        pred = np.full(P.shape, np.nan)
        seconds = []
        for train, test in folds:
            start = time.perf_counter()
            if name in PEERS:
                z = _zscore([X[train]])
                chunks = np.array_split(np.arange(len(train)), 4)
                xs = [z(X[train][c]) for c in chunks]
                ps = [P[train][c] for c in chunks]
                predict = PEERS[name](xs, ps, n_lags, n_splits)
                seconds.append(time.perf_counter() - start)
                pred[test] = predict([z(X)])[0][test]
            else:
                est = STRFRegressor(n_lags=n_lags, random_state=0).fit(X[train], y[train])
                seconds.append(time.perf_counter() - start)
                pred[test] = est.predict(X)[test]
        rows[name] = _score(y, pred, seconds)
    return rows


def warm_up() -> None:
    """One untimed tiny fit per library, so that imports and first-call set-up are not timed."""
    import mne

    mne.set_log_level("ERROR")
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((60, 3)) for _ in range(4)]
    ps = [rng.standard_normal((60, 2)) for _ in range(4)]
    for fit in PEERS.values():
        fit(xs, ps, 3, 2)(xs[:1])
    X, y = np.stack(xs), rng.poisson(1.0, (4, 60, 2, 3)).astype(float)
    STRFRegressor(n_lags=3).fit(X, y).predict(X)


def _score(y, pred, seconds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(np.nanmean(cc_norm(y, pred, multioutput="raw_values")))
    return {"cc_norm": value, "seconds": float(np.mean(seconds))}


def table(rows: dict[str, dict]) -> str:
    fastest_peer = min(r["seconds"] for name, r in rows.items() if name in PEERS)
    out = [{"library": name, **r, "vs fastest peer": fastest_peer / r["seconds"]}
           for name, r in rows.items()]
    return markdown_table(out, [("library", "library", ""), ("cc_norm", "test cc_norm", ".3f"),
                                ("seconds", "fit s (incl. penalty search)", ".3g"),
                                ("vs fastest peer", "speed vs fastest peer", ".2g")])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=HEADLINE_SEED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny data, to check that it runs")
    parser.add_argument("--markdown", help="write the section to this file")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    warnings.simplefilter("ignore")  # convergence and constant-band warnings: scores only
    warm_up()
    before = machine_info()
    sections = []

    n_songs_neurons = 2 if args.quick else 8
    songs = make_realistic_dataset(n_neurons=n_songs_neurons, random_state=args.seed)
    songs.X = songs.X - songs.silence  # silence at zero for every library (see the docstring)
    if args.quick:  # 10 songs, 2 outer folds
        songs.X, songs.y = songs.X[:10], songs.y[:10]
    outer = list(KFold(2 if args.quick else 5).split(songs.X))
    sections.append((f"Songs: {n_songs_neurons} neurons, {len(songs.X)} songs, {len(outer)}-fold "
                     "KFold over songs, 20 lags, pooled out-of-fold cc_norm",
                     run_stimuli(songs.X, songs.y, outer, 20, 5)))

    cont = make_realistic_dataset("continuous", random_state=args.seed)
    cont.X = cont.X - cont.silence
    outer = list(ContiguousBlocks(2 if args.quick else 5).split(cont.X))
    sections.append((f"Continuous: 5 units, {len(cont.X)} frames, {len(outer)} contiguous blocks, "
                     "20 lags, pooled out-of-fold cc_norm",
                     run_continuous(cont.X, cont.y, outer, 20, 4)))

    sizes = (dict(n_stimuli=10, n_times=200, n_freqs=8, n_neurons=6) if args.quick else
             dict(n_stimuli=20, n_times=999, n_freqs=34, n_neurons=119))
    ns1 = make_strf_dataset(**sizes, random_state=args.seed)
    train = np.concatenate([ns1.train, ns1.valid])
    sections.append((f"NS1-like: {sizes['n_stimuli']} stimuli x {sizes['n_times']} frames x "
                     f"{sizes['n_freqs']} bands, {sizes['n_neurons']} neurons, 15 lags; "
                     f"fit on {len(train)} stimuli, test cc_norm on {len(ns1.test)}",
                     run_stimuli(ns1.X, ns1.y, [(train, ns1.test)], 15, 5)))

    after = machine_info()
    text = "\n\n".join(f"### {title}\n\n{table(rows)}" for title, rows in sections)
    finish_section(text, args, before, after)


if __name__ == "__main__":
    main()
