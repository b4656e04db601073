"""Test helpers: a miniature NS1 in the exact OSF layout, and a local HTTP file server."""

from __future__ import annotations

import http.server
import io
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

N_STIMULI = 3
N_FREQS = 4
N_FRAMES = 6  # 30 ms stimuli at 5 ms
N_SETS = 4  # one more set than stimuli, like the DRC sets after the 20 natural sounds
N_REPEATS = 4

# (first field = file name, path in the metadata, file actually in the zip, depth, singleT)
UNITS = [
    ("unitA.mat", "SH.En.C/unitA.mat", "SH.En.C/unitA.mat", 400.0, "Yes"),
    ("unitB.mat", "SH.En.C/unitB.mat", "SH.En.C/unitB_1.mat", 650.0, "Maybe"),  # _1 fallback
    ("unitC.mat", "SH.En.C/unitC.mat", "SH.En.C/unitC.mat", -1.0, "Yes"),  # unknown depth
    ("unitD.mat", "SH.En.C/unitD.mat", "SH.En.C/unitD.mat", 300.0, "No"),
]
CLEAN = np.array([True, True, False, False])

# Unit A, stimulus 0, repeat 0: spikes at and around frame edges, counted by hand:
# 4.4->4 (frame 0), 4.6->5 (1), 0.0->0 (0), -0.4->-0 (0), -0.6->-1 (dropped),
# 2.5->2 (0, round half to even), 7.5->8 (1), 29.4->29 (5), 29.6->30 (dropped, t >= 30),
# 12.0->12 and 12.2->12 (frame 2, both counted).
HAND_TIMES = np.array([4.4, 4.6, 0.0, -0.4, -0.6, 2.5, 7.5, 29.4, 29.6, 12.0, 12.2])
HAND_COUNTS = np.array([4, 2, 2, 0, 0, 1], dtype=np.float32)
# .5*c[t-1] + c[t] + .5*c[t+1] with zeros beyond the edges:
HAND_SMOOTHED = np.array([5.0, 5.0, 3.0, 1.0, 0.5, 1.0], dtype=np.float32)


def spectrogram() -> np.ndarray:
    """X_nfht of shape (n_stimuli, n_freqs, 1, n_frames) with X_nfht[s, f, 0, t] = 100 s + 10 f + t."""
    s, f, t = np.meshgrid(np.arange(N_STIMULI), np.arange(N_FREQS), np.arange(N_FRAMES), indexing="ij")
    return (100.0 * s + 10.0 * f + t)[:, :, None, :]


def spike_trains() -> list[list[list[np.ndarray]]]:
    """trains[unit][set][repeat] = spike times in ms (all N_SETS sets)."""
    rng = np.random.default_rng(7)
    trains = []
    for u in range(len(UNITS)):
        unit = []
        for s in range(N_SETS):
            n_rep = 1 if (u == 0 and s == 1) else N_REPEATS  # a lone repeat: struct squeezed by scipy
            unit.append([np.round(rng.uniform(-3, 33, size=rng.integers(2, 9)), 1) for _ in range(n_rep)])
        trains.append(unit)
    trains[0][0][0] = HAND_TIMES.copy()
    trains[1][0][1] = np.array([3.0])  # one spike: a scalar after loading
    trains[1][0][2] = np.zeros(0)  # no spike: an empty array
    return trains


def _struct_array(field: str, values: list[Any]) -> np.ndarray:
    out = np.empty((1, len(values)), dtype=[(field, object)])
    for i, v in enumerate(values):
        out[0, i][field] = v
    return out


def _spike_file_bytes(unit_trains: list[list[np.ndarray]]) -> bytes:
    sets = np.empty((1, len(unit_trains)), dtype=[("repeats", object), ("sweepinfo", object)])
    for s, reps in enumerate(unit_trains):
        sets[0, s]["repeats"] = _struct_array("t", [np.asarray(t, float).reshape(1, -1) for t in reps])
        sets[0, s]["sweepinfo"] = float(s)
    data = np.empty((1, 1), dtype=[("set", object)])
    data[0, 0]["set"] = sets
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"data": data})
    return buf.getvalue()


def metadata_bytes() -> bytes:
    """MetadataSHEnCneurons.mat: struct array ``neuron`` whose first field is the file name."""
    fields = ["cellfile", "path", "depth", "NoiseRatio", "singleN", "singleT", "NrOfElectrodes", "ElectrodeNumber"]
    neuron = np.empty((1, len(UNITS)), dtype=[(f, object) for f in fields])
    for i, (name, path, _, depth, single_t) in enumerate(UNITS):
        neuron[0, i] = (name, path, depth, 0.1 * (i + 1), float(i % 2), single_t, 16.0, float(i + 3))
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"neuron": neuron})
    return buf.getvalue()


def spectrogram_bytes() -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"X_nfht": spectrogram(), "y_nt": np.zeros((N_STIMULI, N_FRAMES))})
    return buf.getvalue()


def zip_bytes(trains: list | None = None) -> bytes:
    """spikesandwav.zip holding spikesandwav/<path> for every unit, a wav stand-in and Mac junk."""
    trains = spike_trains() if trains is None else trains
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for (_, _, stored, _, _), unit in zip(UNITS, trains, strict=True):
            zf.writestr(f"spikesandwav/{stored}", _spike_file_bytes(unit))
        zf.writestr("spikesandwav/SH.En.C/source.1.sound.0.wav", b"RIFF....WAVE")
        zf.writestr("__MACOSX/spikesandwav/._unitA.mat", b"junk")
    return buf.getvalue()


def ns1_files() -> dict[str, bytes]:
    """The four NS1 files, by their real names."""
    return {
        "MetadataSHEnCneurons.mat": metadata_bytes(),
        "spikesandwav.zip": zip_bytes(),
        "ReadMe.rtf": b"{\\rtf1\\ansi NS1 miniature for tests}",
        "test_data_5ms.mat": spectrogram_bytes(),
    }


def write_ns1_fixture(folder: str | Path) -> Path:
    """Write the miniature NS1 (the four files, zip not extracted) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in ns1_files().items():
        (folder / name).write_bytes(content)
    return folder


def reference_counts(times: np.ndarray, n_frames: int = N_FRAMES, dt_ms: float = 5.0) -> np.ndarray:
    """Spike counts per frame by the plain rule, one spike at a time."""
    counts = np.zeros(n_frames, dtype=np.float32)
    for t in times:
        r = round(float(t))  # Python's round is half-to-even too
        if 0 <= r < n_frames * dt_ms:
            counts[int(r // dt_ms)] += 1
    return counts


# --------------------------------------------------------------------------- HTTP server


class FileServer:
    """Serve byte strings on 127.0.0.1 from a thread, with switchable misbehaviour.

    ``files`` maps a URL path (without the leading slash) to its bytes. ``mode`` maps a
    path to one of ``"range"`` (default: honours ``Range`` with 206), ``"no-range"``
    (ignores ``Range``, answers 200), ``"wrong-range"`` (answers 206 with the whole file),
    ``"truncate"`` (sends the full Content-Length, half the body, then closes),
    ``"trickle"`` (the headers, then one body byte every 50 ms) and ``"trickle-headers"``
    (the status line one byte every 50 ms). A trickle stops by itself after
    ``TRICKLE_S`` seconds, or when the client goes away or the server stops.
    ``redirect/<path>`` answers 302 to ``<path>``.
    ``requests`` records ``(path, range header, status)``.
    """

    TRICKLE_S = 5.0

    def __init__(self, files: dict[str, bytes]):
        self.stopped = threading.Event()
        self.files = dict(files)
        self.mode: dict[str, str] = {}
        self.requests: list[tuple[str, str | None, int]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.lstrip("/")
                rng = self.headers.get("Range")
                if path.startswith("redirect/"):
                    owner.requests.append((path, rng, 302))
                    self.send_response(302)
                    self.send_header("Location", "/" + path[len("redirect/") :])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = owner.files.get(path)
                if body is None:
                    owner.requests.append((path, rng, 404))
                    self.send_error(404)
                    return
                mode = owner.mode.get(path, "range")
                if mode == "trickle-headers":
                    owner.requests.append((path, rng, 200))
                    self._trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Padding: " + b"x" * 1000)
                    return
                start = 0
                if rng and mode == "wrong-range":  # 206, but from byte 0 whatever the request
                    owner.requests.append((path, rng, 206))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{len(body)}")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if rng and mode == "range":
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        owner.requests.append((path, rng, 416))
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                else:
                    status = 200
                owner.requests.append((path, rng, status))
                self.send_response(status)
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if mode == "truncate":
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if mode == "trickle":
                    self._trickle(body[start:])
                    return
                self.wfile.write(body[start:])

            def _trickle(self, data: bytes) -> None:
                self.close_connection = True
                end = time.monotonic() + owner.TRICKLE_S
                for i in range(len(data)):
                    if time.monotonic() > end or owner.stopped.is_set():
                        return
                    try:
                        self.wfile.write(data[i : i + 1])
                        self.wfile.flush()
                    except OSError:  # the client gave up
                        return
                    time.sleep(0.05)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def stop(self) -> None:
        """Stop serving and free the port (later connections are refused)."""
        self.stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
