"""Tests of the main job: ``skstrf compare`` on each kind of dataset."""

import json
import os
import re

import h5py
import ns1_fixture as fx
import numpy as np
import pytest

from skstrf._solvers import AUTO_RANKS
from skstrf.cli import main
from skstrf.datasets import _ns1, make_strf_dataset, save_dataset
from skstrf.kernels import N_GAUSSIANS


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
    for name in ("history.png", "paired_scores.png", "best_cell_strfs.png", "results.json"):
        assert (tmp_path / name).stat().st_size > 0
    summary = json.loads((tmp_path / "results.json").read_text())
    params = [r["params_per_neuron"] for r in summary["rows"]]
    # separable with rank="auto": (largest rank a cell chose) x (bands + lags) + intercept;
    # the seed's method trains rank 1 from a random start
    assert params[0] == params[3] == 6 * 34 + 1 and params[2] == params[5] == 5 * N_GAUSSIANS + 1
    assert params[1] in {r * (34 + 6) + 1 for r in AUTO_RANKS} and params[4] == 34 + 6 + 1
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
    assert "neither 'synthetic', 'realistic', 'continuous', 'ns1' nor an existing HDF5 file" in capsys.readouterr().err


# ------------------------------------------------------------- every layout, bad splits, threads (issue 13)


def _tiny(**kwargs):
    return make_strf_dataset(n_stimuli=6, n_times=60, n_freqs=5, n_neurons=2, n_repeats=3, n_lags=3,
                             random_state=0, **kwargs)


FAST = ["--kernels", "vanilla", "--no-seed-method", "--n-lags", "3", "--no-figures"]


@pytest.mark.parametrize("layout", ["recording", "psth", "one-neuron", "recording-one-neuron"])
def test_compare_runs_on_every_layout_of_the_format(tmp_path, capsys, layout):
    data = _tiny()
    X, y = data.X, data.y
    if layout.startswith("recording"):
        X, y = X.reshape(-1, X.shape[2]), y.reshape(-1, *y.shape[2:])  # 360 frames, one recording
        y = y[:, 0, 0] if layout == "recording-one-neuron" else y
    elif layout == "psth":
        y = y.mean(axis=3)
    else:
        y = y[:, :, 0, 0]
    path = save_dataset(tmp_path / "d.h5", X, y, dt_ms=5.0)
    assert main(["compare", "--dataset", str(path), *FAST]) == 0
    out = capsys.readouterr().out
    if layout.startswith("recording"):
        assert "20 stimuli x 18 frames" in out and "split 14/3/3" in out
        assert "one continuous recording cut into 20 contiguous blocks" in out
    if layout != "recording":
        assert "1 repeats" in out and "falls back to cc" in out
    assert len(_table_rows(out)) == 1


@pytest.mark.parametrize(
    "splits, match",
    [
        ({"train": [0, 1, 2, 3], "valid": [4], "test": [3, 5]}, r"'train' and 'test' .* share stimuli \[3\]"),
        ({"train": [0, 1, 2, 3], "test": [4, 5]}, r"has the split\(s\) \['train', 'test'\] but not \['valid'\]"),
        ({"train": [0, 1, 2, 3], "valid": [], "test": [4, 5]}, "the split 'valid' .* is empty"),
    ],
)
def test_compare_refuses_unusable_splits_before_fitting(tmp_path, capsys, monkeypatch, splits, match):
    from skstrf import compare

    monkeypatch.setattr(compare, "compare_kernels", lambda *a, **k: pytest.fail("fitted"))
    data = _tiny()
    path = save_dataset(tmp_path / "d.h5", data.X, data.y, splits=splits)
    assert main(["compare", "--dataset", str(path), *FAST]) == 1
    assert re.search(match, capsys.readouterr().err)


def test_compare_names_the_bad_index_and_dt_ms_of_a_hand_made_file(tmp_path, capsys):
    data = _tiny()
    for edit, match in [
        (lambda f: f["splits"].create_dataset("test", data=[4, 9]),
         r"split 'test' holds indices \[9\] outside \[0, 6\)"),
        (lambda f: f.attrs.__setitem__("dt_ms", -5.0), "the attribute dt_ms is -5.0"),
    ]:
        path = save_dataset(tmp_path / "d.h5", data.X, data.y, splits={"train": [0, 1, 2], "valid": [3]})
        with h5py.File(path, "a") as f:  # as another tool would write it (version 1, no checksums)
            f.attrs["format_version"] = 1
            del f.attrs["checksum"]
            edit(f)
        assert main(["compare", "--dataset", str(path), *FAST]) == 1
        assert re.search(match, capsys.readouterr().err)


def test_existing_output_file_is_refused_before_any_fit(tmp_path, capsys, monkeypatch):
    from skstrf import compare

    monkeypatch.setattr(compare, "compare_kernels", lambda *a, **k: pytest.fail("fitted"))
    (tmp_path / "out").write_text("results of last week")
    code = main(["compare", "--n-neurons", "2", "--n-times", "20", "--output", str(tmp_path / "out")])
    assert code == 2
    assert "--output" in capsys.readouterr().err and (tmp_path / "out").read_text() == "results of last week"


def test_lags_longer_than_the_synthetic_stimuli_name_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--n-times", "5", "--n-lags", "6"])
    assert "--n-lags 6 is more than --n-times 5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", "--n-lags", "0"])
    assert "expected a whole number >= 1, got 0" in capsys.readouterr().err


def test_synthetic_defaults_are_ns1_sized_and_say_so():
    from skstrf import cli

    assert cli.SYNTHETIC_N_NEURONS == 119
    help_text = cli._parser()._subparsers._group_actions[0].choices["compare"].format_help()
    assert "default 119, NS1's unit count" in " ".join(help_text.split())


def test_torch_threads_follow_the_cpus_the_process_may_use(tmp_path, monkeypatch):
    import torch

    from skstrf import cli

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert cli.n_threads(None) == 1
    assert cli.n_threads(3) == 3  # --n-threads wins
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert cli.n_threads(None) == 2  # then OMP_NUM_THREADS
    before = torch.get_num_threads()
    try:
        data = _tiny()
        path = save_dataset(tmp_path / "d.h5", data.X, data.y)
        assert main(["compare", "--dataset", str(path), "--n-threads", "1", *FAST]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("n, sizes", [(3, (1, 1, 1)), (10, (6, 2, 2)), (20, (14, 3, 3)), (30, (20, 5, 5))])
def test_train_valid_test_indices_is_the_one_seed_style_split(n, sizes):
    from skstrf.compare import split_indices
    from skstrf.model_selection import train_valid_test_indices

    train, valid, test = train_valid_test_indices(n)
    assert (len(train), len(valid), len(test)) == sizes
    np.testing.assert_array_equal(np.concatenate([train, valid, test]), np.arange(n))  # contiguous, in order
    for a, b in zip(split_indices(n), (train, valid, test), strict=True):
        np.testing.assert_array_equal(a, b)
    split = _ns1._contiguous_split(n)
    np.testing.assert_array_equal(split["valid"], valid)
    # 15% rounded half up: 4.5 at 30 stimuli gives 5, as the synthetic generator does
    assert len(valid) == max(1, int(np.floor(0.15 * n + 0.5)))


def test_train_valid_test_indices_needs_three_stimuli():
    from skstrf.model_selection import train_valid_test_indices

    with pytest.raises(ValueError, match="needs at least 3 stimuli; got 2"):
        train_valid_test_indices(2)


def test_realistic_datasets_are_fitted_as_generated():
    """The compare job fits the realistic data's X as generated (log power): no generator-only
    level of silence is subtracted (a user has none), and the default history makes the fit
    independent of where zero is."""
    from skstrf.cli import REALISTIC_N_NEURONS, load_comparison_data
    from skstrf.datasets import make_realistic_dataset

    songs = load_comparison_data("realistic", random_state=3)
    raw = make_realistic_dataset(n_neurons=REALISTIC_N_NEURONS, random_state=3)
    np.testing.assert_array_equal(songs.X, raw.X)
    assert any("as generated" in note for note in songs.notes)
    cont = load_comparison_data("continuous", random_state=3)
    raw = make_realistic_dataset("continuous", random_state=3)
    np.testing.assert_allclose(np.nanmean(cont.X.reshape(-1, 2), axis=0), raw.X.mean(axis=0))
    assert any("as generated" in note for note in cont.notes)


# ------------------------------------------------------------- errors: one line for the input, a traceback for a bug (issue 27)
def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_input_errors_are_one_line_saying_what_to_do(tmp_path, capsys, monkeypatch):
    from skstrf import compare

    monkeypatch.setattr(compare, "compare_kernels", lambda *a, **k: pytest.fail("fitted"))
    # a bad path
    assert main(["compare", "--dataset", str(tmp_path / "no_such.h5"), *FAST]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "nor an existing HDF5 file; give one of these names or the path of a file written by" in line
    # a bad file format
    (tmp_path / "notes.h5").write_text("not a dataset\nat all\n")
    assert main(["compare", "--dataset", str(tmp_path / "notes.h5"), *FAST]) == 1
    assert "is not an HDF5 file" in _one_error_line(capsys.readouterr().err)
    # a recording too short for --n-lags
    data = _tiny()
    path = save_dataset(tmp_path / "short.h5", data.X[0, :40], data.y[0, :40], dt_ms=5.0)
    assert main(["compare", "--dataset", str(path), *FAST[:-3], "--n-lags", "8", "--no-figures"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "one recording of 40 frames: too short" in line and "use --n-lags 6 or less" in line


def test_errors_during_the_fits_are_one_line_too(tmp_path, capsys, monkeypatch):
    from skstrf import compare

    def bad_data(*args, **kwargs):
        raise ValueError("X has NaN frames inside stimulus 2 (frame 7 is NaN but frame 9 is not);\n"
                         "NaN is only allowed as end-padding, after the last valid frame.")

    monkeypatch.setattr(compare, "compare_kernels", bad_data)
    data = _tiny()
    path = save_dataset(tmp_path / "d.h5", data.X, data.y)
    assert main(["compare", "--dataset", str(path), *FAST]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line == ("error: X has NaN frames inside stimulus 2 (frame 7 is NaN but frame 9 is not); NaN is "
                    "only allowed as end-padding, after the last valid frame. (--debug shows the traceback)")
    with pytest.raises(ValueError, match="NaN frames inside stimulus 2"):  # --debug: the traceback
        main(["compare", "--dataset", str(path), *FAST, "--debug"])


def test_a_bug_shows_its_traceback(tmp_path, capsys, monkeypatch):
    from skstrf import compare

    def bug(*args, **kwargs):
        return {}["rows"]

    monkeypatch.setattr(compare, "compare_kernels", bug)
    data = _tiny()
    path = save_dataset(tmp_path / "d.h5", data.X, data.y)
    assert main(["compare", "--dataset", str(path), *FAST]) == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'rows'" in err
    assert err.strip().splitlines()[-1].startswith("error: internal error KeyError: this is a bug in skstrf")
    with pytest.raises(KeyError):
        main(["compare", "--dataset", str(path), *FAST, "--debug"])


@pytest.mark.parametrize("option, match", [
    (["--device", "gpu"], r"--device: unknown device 'gpu'"),
    (["--random-state", "-1"], r"--random-state: expected a whole number >= 0, got -1"),
    (["--random-state", str(2**32)], r"--random-state: expected a seed from 0 to 2\*\*32 - 1"),
    (["--verbose", "-2"], r"--verbose: expected a whole number >= 0, got -2"),
])
def test_bad_option_values_exit_2_before_any_work(capsys, monkeypatch, option, match):
    from skstrf import cli

    monkeypatch.setattr(cli, "load_comparison_data", lambda *a, **k: pytest.fail("loaded"))
    with pytest.raises(SystemExit) as exit_:
        main(["compare", *option])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and "Traceback" not in err


def test_help_documents_the_errors_and_debug():
    from skstrf import cli

    help_text = " ".join(cli._parser()._subparsers._group_actions[0].choices["compare"].format_help().split())
    assert "--debug show the Python traceback of every error" in help_text
    assert "printed as one line" in help_text and "exit status 70" in help_text


def test_a_recording_is_cut_by_the_one_block_rule():
    """The blocks of a recording follow skstrf._layout.block_edges (KFold sizes, longer blocks
    first), like ContiguousBlocks and the estimator's own blocks."""
    from pathlib import Path

    from skstrf._layout import block_edges
    from skstrf.cli import _recording_as_blocks

    X = np.arange(46.0)[:, None]
    y = np.arange(46.0)[:, None, None]
    X_blocks, y_blocks = _recording_as_blocks(X, y, n_lags=1, source=Path("rec"))  # 20 blocks
    lengths = (~np.isnan(X_blocks[..., 0])).sum(axis=1)
    assert lengths.tolist() == [3] * 6 + [2] * 14
    assert_edges = np.concatenate([[0], np.cumsum(lengths)])
    np.testing.assert_array_equal(assert_edges, block_edges(46, 20))
    np.testing.assert_array_equal(X_blocks[..., 0][~np.isnan(X_blocks[..., 0])], np.arange(46.0))
    np.testing.assert_array_equal(np.isnan(y_blocks[..., 0, 0]), np.isnan(X_blocks[..., 0]))


def test_threads_from_omp_num_threads_are_said_to_be(tmp_path, capsys, monkeypatch):
    """The note "(from OMP_NUM_THREADS)" read a function where it meant the option, and never showed."""
    import torch

    from skstrf import compare

    monkeypatch.setattr(compare, "compare_kernels", lambda *a, **k: (_ for _ in ()).throw(ValueError("stop")))
    data = _tiny()
    path = save_dataset(tmp_path / "d.h5", data.X, data.y)
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert main(["compare", "--dataset", str(path), *FAST]) == 1
        assert "torch threads: 1 (from OMP_NUM_THREADS)" in capsys.readouterr().out
        assert main(["compare", "--dataset", str(path), "--n-threads", "1", *FAST]) == 1
        out = capsys.readouterr().out
        assert "torch threads: 1" in out and "OMP_NUM_THREADS" not in out
    finally:
        torch.set_num_threads(before)
