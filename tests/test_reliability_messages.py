"""Reliability: one output folder per training run, and one-line messages that say what to do.

Each test matches a row of docs/reliability.md.
"""

from __future__ import annotations

import fcntl
import gzip
import os
import subprocess
import sys
import warnings
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_record, write_fitrec

from hr_lstm.data.cache import ArrayBuffer
from hr_lstm.data.fitrec import CHANNELS, ParseConfig, iter_records, record_to_series
from hr_lstm.data.ingest import ingest
from hr_lstm.data.recordings import read_recording, to_fitrec_record
from hr_lstm.errors import CheckpointError, DataError
from hr_lstm.models.checkpoint import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
BOM = "\ufeff"
T0 = datetime(2024, 5, 1, 7, 0, tzinfo=timezone.utc)


def _ingest(path, workers=1):
    out = ArrayBuffer(500, len(CHANNELS))
    metas, _ = ingest(path, ParseConfig(), out, workers=workers, chunk_bytes=60_000, log=lambda *a: None)
    return out.finish(), [asdict(m) for m in metas]


def _one_line(message: str) -> None:
    assert "\n" not in message and "\x1b" not in message and "<ast." not in message and len(message) < 400


# --- 1. two trainings into one --out -------------------------------------------------------------------------------


def _train(data: Path, out: Path, timeout=300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "hr_lstm.train", "--epochs", "1", "--hidden_size", "8", "--num_layers", "1"]
    cmd += ["--data", str(data), "--out", str(out), "--device", "cpu"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_second_training_into_a_busy_out_is_refused_with_one_line(tmp_path, sim_data):
    out = tmp_path / "run"
    out.mkdir()
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)  # another run holds the folder (this process)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, f"{os.getpid()}\n".encode())
        done = _train(sim_data, out)
    finally:
        os.close(fd)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Wrote" not in done.stdout
    assert done.stderr.strip() == (
        f"hr-lstm train: error: {out}: another training run (pid {os.getpid()}) is writing here; "
        "wait for it or choose another --out"
    )
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing of the refused run


def test_a_finished_run_leaves_the_folder_free(tmp_path, sim_data):
    out = tmp_path / "run"
    first = _train(sim_data, out)
    assert first.returncode == 0 and "Wrote" in first.stdout, first.stderr
    fd = os.open(out / ".lock", os.O_RDWR)  # the run took the lock ...
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ... and let it go: this would raise otherwise
    finally:
        os.close(fd)


def test_folder_lock_refuses_a_second_holder_in_another_process(tmp_path):
    from hr_lstm.paths import folder_lock

    code = (
        "import sys\nfrom hr_lstm.paths import folder_lock\nfrom hr_lstm.errors import HRLSTMError\n"
        "try:\n    with folder_lock(sys.argv[1]): pass\nexcept HRLSTMError as e:\n    print(e); sys.exit(2)\n"
    )
    with folder_lock(tmp_path):
        busy = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert busy.returncode == 2 and f"(pid {os.getpid()})" in busy.stdout
    free = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert free.returncode == 0, free.stdout + free.stderr


# --- 2. messages ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("style", ["python", "jsonl"])
def test_nan_or_infinity_in_a_record_names_the_key(tmp_path, token, style):
    path = write_fitrec(tmp_path / "w.json", [make_record(workout_id=i, seed=i) for i in range(3)], style=style)
    lines = path.read_text().splitlines()
    key = "'heart_rate': [" if style == "python" else '"heart_rate": ['
    head, tail = lines[1].split(key)
    lines[1] = head + key + token + tail[tail.index(",") :]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as serial:
        for where, line, record in iter_records(path):
            record_to_series(record, where, line, ParseConfig())
    for workers in (1, 2):
        with pytest.raises(DataError) as parallel:
            _ingest(path, workers=workers)
        assert str(parallel.value) == str(serial.value)
    message = str(serial.value)
    _one_line(message)
    assert message.startswith(f"{path}: line 2: 'heart_rate' holds a non-numeric value ({token.lstrip('-')})")
    assert "NaN/Infinity are not allowed" in message


def _checkpoint(tmp_path) -> Path:
    path = tmp_path / "good.pt"
    save_checkpoint(path, torch.nn.Linear(40, 40).state_dict(), config={}, normalizer={}, user_ids=[])
    return path


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_checkpoint_says_so(tmp_path, keep):
    data = _checkpoint(tmp_path).read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    _one_line(str(err.value))
    assert "Errno" not in str(err.value)
    assert str(err.value).endswith("truncated or damaged checkpoint (re-train or re-download)")
    assert str(err.value).startswith(f"{path}: ")


def test_pickled_module_checkpoint_is_one_clean_line_without_warnings(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
    assert not caught
    _one_line(str(err.value))
    assert str(err.value).startswith(
        f"{path}: not an hr_lstm checkpoint: it holds pickled Python objects, which are not loaded for safety"
    )


def _gpx(times: list[datetime], bom: bool = False) -> bytes:
    pts = "".join(
        f'<trkpt lat="{45 + i * 1e-4}" lon="7"><ele>{100 + i}</ele><time>{t.isoformat()}</time>'
        f"<extensions><tp:TrackPointExtension><tp:hr>{120 + i % 30}</tp:hr></tp:TrackPointExtension></extensions>"
        "</trkpt>"
        for i, t in enumerate(times)
    )
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<gpx xmlns="http://www.topografix.com/GPX/1/1" version="1.1" '
        'creator="t" xmlns:tp="http://www.garmin.com/xmlschemas/TrackPointExtension/v2">'
        f"<trk><type>running</type><trkseg>{pts}</trkseg></trk></gpx>"
    )
    return ((BOM if bom else "") + text).encode()


def test_gpx_with_all_equal_time_stamps_says_they_do_not_advance(tmp_path):
    path = tmp_path / "frozen.gpx"
    path.write_bytes(_gpx([T0] * 200))
    with pytest.raises(DataError) as err:
        to_fitrec_record(read_recording(path), "bob", seq_len=50)
    _one_line(str(err.value))
    assert str(err.value).startswith("frozen.gpx: time stamps do not advance (all equal), so no speed can be derived")


@pytest.mark.parametrize("gz", [False, True])
def test_gpx_with_a_byte_order_mark_is_read(tmp_path, gz):
    times = [T0 + timedelta(seconds=5 * i) for i in range(200)]
    plain, marked = tmp_path / "plain.gpx", tmp_path / ("marked.gpx" + (".gz" if gz else ""))
    plain.write_bytes(_gpx(times))
    marked.write_bytes(gzip.compress(_gpx(times, bom=True)) if gz else _gpx(times, bom=True))
    a, b = read_recording(plain), read_recording(marked)
    assert b.file_format == "gpx" and len(b.samples) == 200
    assert a.samples.equals(b.samples)
    ra, rb = to_fitrec_record(a, "bob", seq_len=50), to_fitrec_record(b, "bob", seq_len=50)
    assert ra["speed"] == rb["speed"] and ra["heart_rate"] == rb["heart_rate"]


@pytest.mark.parametrize("style", ["python", "jsonl", "array"])
@pytest.mark.parametrize("gz", [False, True])
def test_fitrec_file_with_a_byte_order_mark_is_read(tmp_path, style, gz):
    records = [make_record(workout_id=i, seed=i) for i in range(4)]
    suffix = ".json.gz" if gz else ".json"
    plain = write_fitrec(tmp_path / f"plain{suffix}", records, style=style)
    marked = tmp_path / f"marked{suffix}"
    text = BOM.encode() + (gzip.decompress(plain.read_bytes()) if gz else plain.read_bytes())
    marked.write_bytes(gzip.compress(text) if gz else text)
    expected, expected_meta = _ingest(plain)
    for workers in (1, 2):
        series, meta = _ingest(marked, workers=workers)
        np.testing.assert_array_equal(series, expected)
        assert [m["id"] for m in meta] == [m["id"] for m in expected_meta]
    serial = [record_to_series(r, w, n, ParseConfig())[0] for w, n, r in iter_records(marked)]
    np.testing.assert_array_equal(np.stack(serial), expected)


def test_a_training_run_that_fails_at_once_leaves_no_folder(sim_data, tmp_path, capsys):
    """`train --sport quidditch --out new/` fails at filtering: no `new/` with a lone lock file behind it."""
    from hr_lstm.cli import main as cli_main

    out = tmp_path / "new"
    status = cli_main(["train", "--data", str(sim_data), "--sport", "quidditch", "--out", str(out), "--epochs", "1"])
    assert status == 2 and not out.exists()
