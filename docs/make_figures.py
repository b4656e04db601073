"""Generate the figures of the user guide page "Beyond the linear STRF" into docs/_static/.

Run from the repository root (about two minutes on two CPU cores)::

    python docs/make_figures.py

Three figures, each from synthetic data with known STRFs: the static nonlinearity of an LN
model against the data, true and fitted ON/OFF STRFs of an AdapTrans model, and gradient
maps next to STRFs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from skstrf import STRFRegressor  # noqa: E402
from skstrf.datasets import make_strf_dataset  # noqa: E402
from skstrf.inspection import gradient_maps, linear_drive, output_nonlinearity  # noqa: E402
from skstrf.metrics import cc_norm  # noqa: E402
from skstrf.plotting import plot_strfs  # noqa: E402

STATIC = Path(__file__).resolve().parent / "_static"
# LN and AdapTrans models fine-tune the closed-form start: lr 1e-3 (see the guide).
LN = {"nonlinearity": "softplus", "loss": "poisson", "lr": 1e-3, "max_epochs": 200}


def _normalised(kernels: np.ndarray) -> np.ndarray:
    """Each kernel (all its channels together) divided by its largest absolute value."""
    kernels = np.asarray(kernels, dtype=float)
    peak = np.abs(kernels.reshape(len(kernels), -1)).max(1)
    return kernels / peak.reshape(-1, *([1] * (kernels.ndim - 1)))


def _fit(data, **params) -> STRFRegressor:
    fit = np.concatenate([data.train, data.valid])
    est = STRFRegressor(validation_fraction=len(data.valid) / len(fit), random_state=0, **params)
    return est.fit(data.X[fit], data.y[fit])


def _test_scores(est, data) -> np.ndarray:
    return cc_norm(data.y[data.test], est.predict(data.X[data.test]), multioutput="raw_values")


def nonlinearity_figure(data, linear, ln, neurons, path: Path) -> None:
    """Test responses and both models' predictions against the LN model's linear stage."""
    test = data.test
    z = linear_drive(ln, data.X[test])
    psth = np.nanmean(data.y[test], axis=-1)
    linear_pred = linear.predict(data.X[test])
    per_second = 1000.0 / data.dt_ms
    fig, axes = plt.subplots(1, len(neurons), figsize=(3.6 * len(neurons), 3.4), layout="constrained")
    scores_ln, scores_linear = _test_scores(ln, data), _test_scores(linear, data)
    for ax, n in zip(axes, neurons):
        zn = z[..., n].ravel()
        # 20 equal-count bins of the LN model's linear stage
        edges = np.quantile(zn, np.linspace(0, 1, 21))
        bins = np.clip(np.searchsorted(edges, zn, side="right") - 1, 0, 19)

        def binned(values):
            return np.array([values.ravel()[bins == b].mean() for b in range(20)])

        grid = np.linspace(zn.min(), zn.max(), 200)
        curve = output_nonlinearity(ln, np.repeat(grid[:, None], ln.n_neurons_, axis=1))[:, n]
        ax.plot(binned(z[..., n]) * per_second, binned(psth[..., n]) * per_second, "o", color="0.3",
                ms=4, label="test PSTH")
        ax.plot(grid * per_second, curve * per_second, color="C3", lw=2,
                label=f"LN: fitted softplus (cc_norm {scores_ln[n]:.2f})")
        ax.plot(binned(z[..., n]) * per_second, binned(linear_pred[..., n]) * per_second, "s--",
                color="C0", ms=3, lw=1.2, label=f"linear model (cc_norm {scores_linear[n]:.2f})")
        ax.axhline(0, color="0.8", lw=0.8, zorder=0)
        ax.axvline(0, color="0.8", lw=0.8, zorder=0)
        ax.set(title=f"neuron {n} ({data.kind[n].replace('_', '-')})",
               xlabel="LN linear stage z (spikes/s)")
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("rate, mean per bin of z (spikes/s)")
    fig.suptitle("LN model (softplus output, Poisson loss) on rectifying cells: test frames in 20 bins of z")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def onoff_figure(data, adapt, neurons, path: Path) -> None:
    """True and fitted ON/OFF STRFs side by side, each normalised to its peak."""
    kernels, titles = [], []
    for n in neurons:
        kernels += [data.strfs[n], adapt.strfs_[n]]
        titles += [f"neuron {n}, true", f"neuron {n}, fitted"]
    fig, _ = plot_strfs(_normalised(kernels), titles=titles, freqs=data.freqs, dt_ms=data.dt_ms,
                        clabel="weight / peak of the STRF",
                        suptitle="AdapTrans + LN: true and fitted STRFs on the ON and OFF channels")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def gradient_map_figure(rect, ln, onoff, linear_onoff, adapt, n_rect: int, n_onoff: int, path: Path) -> None:
    """Gradient maps next to STRFs: LN on rectified cells, AdapTrans + LN on ON/OFF cells."""
    test_rect, test_onoff = rect.X[rect.test], onoff.X[onoff.test]
    level = np.nanmean(onoff.X, axis=(0, 1))
    panels = [
        rect.strfs[n_rect], ln.strfs_[n_rect], gradient_maps(ln, test_rect)[n_rect],
        linear_onoff.strfs_[n_onoff], gradient_maps(adapt, baseline=level)[n_onoff],
        gradient_maps(adapt, test_onoff)[n_onoff],
    ]
    titles = [
        f"neuron {n_rect}: true STRF", "LN: strfs_ (linear stage)", "LN: gradient map\n(mean over test frames)",
        f"ON/OFF neuron {n_onoff}: linear strfs_\n(no prefilter)", "AdapTrans + LN: gradient map\n(at the mean level)",
        "AdapTrans + LN: gradient map\n(mean over test frames)",
    ]
    fig, _ = plot_strfs(_normalised(panels), titles=titles, freqs=rect.freqs, dt_ms=rect.dt_ms, ncols=3,
                        clabel="weight / peak of the map",
                        suptitle="Gradient maps: one (F, L) map per neuron for any model")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=STATIC)
    parser.add_argument("--n-neurons", type=int, default=9)
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)

    rect = make_strf_dataset(n_neurons=args.n_neurons, random_state=0)
    linear = _fit(rect)
    ln = _fit(rect, **LN)
    onoff = make_strf_dataset(n_neurons=args.n_neurons, random_state=0, prefilter="adaptrans")
    freq_range = (float(onoff.freqs[0]), float(onoff.freqs[-1]))
    linear_onoff = _fit(onoff)
    adapt = _fit(onoff, prefilter="adaptrans", freq_range=freq_range, **LN)
    print(f"test cc_norm: rectified linear {np.nanmean(_test_scores(linear, rect)):.3f}, "
          f"LN {np.nanmean(_test_scores(ln, rect)):.3f}; ON/OFF linear "
          f"{np.nanmean(_test_scores(linear_onoff, onoff)):.3f}, AdapTrans + LN "
          f"{np.nanmean(_test_scores(adapt, onoff)):.3f}")

    nonlinearity_figure(rect, linear, ln, [0, 1, 2], args.output / "beyond_linear_nonlinearity.png")
    onoff_figure(onoff, adapt, [0, 1], args.output / "beyond_linear_onoff_strfs.png")
    gradient_map_figure(rect, ln, onoff, linear_onoff, adapt, 0, 1,
                        args.output / "beyond_linear_gradient_maps.png")
    print(f"wrote the figures to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
