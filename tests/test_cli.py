"""Tests of the main job: ``skstrf compare`` on each kind of dataset."""

import json

import ns1_fixture as fx
import numpy as np
import pytest

from skstrf.cli import main
from skstrf.datasets import _ns1, make_strf_dataset, save_dataset


def _table_rows(out):
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("parameterization"))
    rows = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        rows.append(line)
    return rows


def test_compare_on_synthetic_data_prints_the_table_and_writes_figures(tmp_path, capsys):
    code = main(["compare", "--n-neurons", "6", "--n-times", "150", "--max-epochs", "3",
                 "--n-lags", "6", "--output", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    rows = _table_rows(out)
    assert len(rows) == 6  # three kernels, default solvers and the seed's method
    assert rows[0].split()[:2] == ["vanilla", "ridge"]
    assert "Best-fit cell across the parameterizations" in out
    for name in ("history.png", "score_hist.png", "best_cell_strfs.png", "results.json"):
        assert (tmp_path / name).stat().st_size > 0
    summary = json.loads((tmp_path / "results.json").read_text())
    assert [r["params_per_neuron"] for r in summary["rows"]] == [6 * 34 + 1, 34 + 6 + 1, 41] * 2
    # the printed means are the means of the saved per-cell scores
    for row in summary["rows"]:
        scores = np.array(summary["test_cc_norm"][row["name"]], dtype=float)
        assert row["test_cc_norm"] == pytest.approx(np.nanmean(scores))


def test_compare_on_an_hdf5_file_uses_its_split(tmp_path, capsys):
    data = make_strf_dataset(n_stimuli=6, n_times=120, n_freqs=8, n_neurons=3, n_repeats=4,
                             n_lags=4, ragged=True, random_state=0)
    path = save_dataset(tmp_path / "mine.h5", data.X, data.y, dt_ms=5.0,
                        splits={"train": [0, 1, 2], "valid": [3], "test": [4, 5]})
    code = main(["compare", "--dataset", str(path), "--no-seed-method", "--n-lags", "4",
                 "--no-figures"])
    assert code == 0
    out = capsys.readouterr().out
    assert "split 3/1/2" in out
    assert len(_table_rows(out)) == 3


def test_compare_on_ns1_placed_by_hand(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKSTRF_DATA", str(tmp_path))
    fx.write_ns1_fixture(tmp_path / "ns1")
    code = main(["compare", "--dataset", "ns1", "--no-seed-method", "--n-lags", "2",
                 "--kernels", "vanilla", "separable", "--no-figures"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"{fx.N_STIMULI} stimuli x {fx.N_FRAMES} frames x {fx.N_FREQS} bands" in out
    assert len(_table_rows(out)) == 2


def test_compare_on_ns1_offline_explains_how_to_place_the_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SKSTRF_DATA", str(tmp_path))
    for name in list(_ns1.NS1_URLS):
        monkeypatch.setitem(_ns1.NS1_URLS, name, f"http://127.0.0.1:9/{name}")  # refused
    assert main(["compare", "--dataset", "ns1"]) == 1
    err = capsys.readouterr().err
    assert "MetadataSHEnCneurons.mat" in err and str(tmp_path) in err


def test_compare_with_an_unknown_dataset_fails_clearly(capsys):
    assert main(["compare", "--dataset", "no/such/file.h5"]) == 1
    assert "neither 'synthetic', 'ns1' nor an existing HDF5 file" in capsys.readouterr().err
