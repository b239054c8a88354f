"""Parallel ingestion: same arrays as the serial path, errors that name file and line, the CLI."""

import argparse
import gzip
import json
import re
from dataclasses import asdict

import numpy as np
import pytest
from conftest import make_record, write_fitrec

from hr_lstm.cli.data import add_ingest_arguments, run_ingest
from hr_lstm.data.cache import ArrayBuffer, NpyWriter, load_workouts
from hr_lstm.data.fitrec import CHANNELS, ParseConfig, parse_line, record_to_series
from hr_lstm.data.ingest import ingest
from hr_lstm.errors import DataError, HRLSTMError

QUIET = dict(log=lambda *a: None)
SMALL_CHUNKS = 60_000  # about two records per chunk: many chunks even in a small file


def _records(n=14):
    records = [
        make_record(workout_id=i, user_id=i % 3, seed=i, with_speed=i % 4 != 1, sport="bike" if i % 5 == 0 else "run")
        for i in range(max(n, 10))
    ]
    records[3] = make_record(workout_id=3, n=120, seed=3)  # resampled onto 500 points
    records[6]["sport"] = "runner's choice"  # apostrophe: the literal-parsing fallback
    records[9]["timestamp"][5] = records[9]["timestamp"][4]  # repeated timestamp
    return records[:n]


def _ingest(path, workers, skip_bad=False, chunk_bytes=SMALL_CHUNKS):
    out = ArrayBuffer(500, len(CHANNELS))
    metas, stats = ingest(
        path, ParseConfig(), out, skip_bad=skip_bad, workers=workers, chunk_bytes=chunk_bytes, **QUIET
    )
    return out.finish(), [asdict(m) for m in metas], stats


@pytest.mark.parametrize("gz", [False, True])
def test_parallel_and_serial_give_identical_arrays_and_meta(tmp_path, gz):
    records = _records()
    path = write_fitrec(tmp_path / f"d.json{'.gz' if gz else ''}", records)
    serial, serial_meta, stats1 = _ingest(path, workers=1)
    parallel, parallel_meta, stats2 = _ingest(path, workers=2)
    assert stats1.workers == 1 and stats2.workers == 2 and stats2.worker_peak_rss_bytes > 0
    assert parallel.dtype == np.float32 and parallel.shape == (len(records), 500, len(CHANNELS))
    assert np.array_equal(serial, parallel) and serial_meta == parallel_meta
    assert [m["line"] for m in parallel_meta] == list(range(1, len(records) + 1))
    # ... and both equal converting the records one at a time
    one_by_one = [record_to_series(r, "x", i + 1, ParseConfig()) for i, r in enumerate(records)]
    assert np.array_equal(np.stack([s for s, _ in one_by_one]), parallel)
    assert [asdict(m) for _, m in one_by_one] == parallel_meta


def test_blank_lines_and_crlf_keep_line_numbers(tmp_path):
    records = _records(5)
    text = "\r\n".join([str(records[0]), "", str(records[1]), "   ", *map(str, records[2:])]) + "\r\n"
    path = tmp_path / "d.json"
    path.write_text(text)
    series, meta, stats = _ingest(path, workers=2)
    assert [m["line"] for m in meta] == [1, 3, 5, 6, 7] and stats.n_lines == 7 and len(series) == 5


def _with_bad_line(tmp_path, bad_line: int, bad: str, n=10, gz=False):
    lines = [str(r) for r in _records(n)]
    lines[bad_line - 1] = bad
    text = "\n".join(lines) + "\n"
    path = tmp_path / f"bad.json{'.gz' if gz else ''}"
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_worker_errors_name_file_and_line(tmp_path, gz):
    missing_hr = str({k: v for k, v in make_record().items() if k != "heart_rate"})
    path = _with_bad_line(tmp_path, 7, missing_hr, gz=gz)
    with pytest.raises(DataError) as err:
        _ingest(path, workers=2)
    assert str(err.value) == f"{path}: line 7: missing key(s) 'heart_rate'"
    path = _with_bad_line(tmp_path, 8, "{'altitude': [1, 2,", gz=gz)
    with pytest.raises(DataError, match=rf"{path}: line 8: malformed record") as err:
        _ingest(path, workers=2)
    assert "\n" not in str(err.value)


def test_first_bad_record_in_the_file_is_the_one_reported(tmp_path):
    lines = [str(r) for r in _records(10)]
    lines[2] = str({**make_record(), "altitude": "high"})  # a conversion error, early
    lines[3] = "{'altitude': [1, 2,"  # a parse error, later in the same chunk
    lines[8] = "not a record"
    path = tmp_path / "d.json"
    path.write_text("\n".join(lines) + "\n")
    for workers, chunk in ((1, SMALL_CHUNKS), (2, SMALL_CHUNKS), (2, 1 << 20)):
        with pytest.raises(DataError, match=rf"{path}: line 3: 'altitude' should be a list"):
            _ingest(path, workers=workers, chunk_bytes=chunk)


def test_skip_bad_counts_skipped_records_with_their_lines(tmp_path):
    lines = [str(r) for r in _records(10)]
    lines[1] = "{'altitude': [1, 2,"
    lines[6] = str({**make_record(), "heart_rate": [None] * 500})
    path = tmp_path / "d.json"
    path.write_text("\n".join(lines) + "\n")
    series, meta, stats = _ingest(path, workers=2, skip_bad=True)
    assert len(series) == 8 and len(stats.skipped) == 2
    assert stats.skipped[0].startswith(f"{path}: line 2: malformed record")
    assert stats.skipped[1].startswith(f"{path}: line 7: 'heart_rate' has 500 None/NaN")
    assert 2 not in [m["line"] for m in meta] and 7 not in [m["line"] for m in meta]


def test_truncated_gzip_in_parallel(tmp_path):
    data = gzip.compress(("\n".join(str(r) for r in _records(10)) + "\n").encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(DataError, match=r"cut\.json\.gz: truncated or corrupt gzip"):
        _ingest(path, workers=2)


def test_npy_writer_header_is_standard(tmp_path):
    rows = np.random.default_rng(0).normal(size=(7, 500, len(CHANNELS))).astype(np.float32)
    with NpyWriter(tmp_path / "s.npy", 500, len(CHANNELS)) as out:
        out.append(rows[:3])
        out.append(rows[3:])
    assert np.array_equal(np.load(tmp_path / "s.npy"), rows)
    assert np.load(tmp_path / "s.npy", mmap_mode="r").offset % 64 == 0


def test_cache_from_parallel_ingest_matches_and_changes_with_settings(tmp_path):
    path = write_fitrec(tmp_path / "d.json.gz", _records())
    cached = load_workouts(path, workers=2, **QUIET)
    in_memory = load_workouts(path, cache=False, workers=1, **QUIET)
    assert np.array_equal(cached.series, in_memory.series) and cached.meta.equals(in_memory.meta)
    manifest = json.loads((cached.cache_dir / "manifest.json").read_text())
    assert manifest["n_workouts"] == len(cached) and manifest["fingerprint"] == cached.fingerprint
    other = load_workouts(path, ParseConfig(seq_len=100), workers=1, **QUIET)
    assert other.cache_dir != cached.cache_dir and other.series.shape[1] == 100


def _cli(argv):
    parser = argparse.ArgumentParser()
    add_ingest_arguments(parser)
    return run_ingest(parser.parse_args(argv))


def test_ingest_command_prints_kept_dropped_speed_memory(tmp_path, capsys):
    path = write_fitrec(tmp_path / "d.json", _records(30))
    assert _cli([str(path), "--workers", "2", "--min-workouts", "2"]) == 0
    out = capsys.readouterr().out
    assert "(built now)" in out and "Workouts: 30 parsed, 0 bad records skipped" in out
    assert "workouts/s" in out and "Peak memory, sampled every 20 ms over the whole command" in out
    main, tree = (
        float(x.replace(",", "")) for x in re.findall(r"this process ([\d,]+) MB, with its workers ([\d,]+) MB", out)[0]
    )
    assert 0 < main <= tree  # the workers count too
    assert "Kept 29 of 30 workouts" in out and "Dropped: 1 users with fewer than 2" in out
    assert _cli([str(path)]) == 0
    assert "(reused)" in capsys.readouterr().out


def test_ingest_command_bad_file_fails_cleanly_and_leaves_no_cache(tmp_path):
    path = _with_bad_line(tmp_path, 4, "{'altitude': [1, 2,")
    with pytest.raises(HRLSTMError, match=rf"{path}: line 4: malformed"):
        _cli([str(path), "--workers", "2"])
    assert not (tmp_path / "bad.json.hrcache").exists()
    with pytest.raises(HRLSTMError, match="--workers 0"):
        _cli([str(path), "--workers", "0"])


def test_cli_exit_status_when_wired(tmp_path, capsys):
    from hr_lstm import cli

    parser = cli.build_parser()
    if "ingest" not in parser._subparsers._group_actions[0].choices:
        pytest.skip("`hr-lstm ingest` is not wired into the CLI yet")
    good = write_fitrec(tmp_path / "d.json", _records(12))
    assert cli.main(["ingest", str(good), "--workers", "2"]) == 0
    bad = _with_bad_line(tmp_path, 4, "{'altitude': [1, 2,")
    assert cli.main(["ingest", str(bad)]) == 2
    assert f"{bad}: line 4" in capsys.readouterr().err
    assert not (tmp_path / "bad.json.hrcache").exists()


def _odd_records():
    base = make_record(seed=11)
    nested = {**base, "altitude": [[a] for a in base["altitude"]]}  # as many '[' ... as values
    return {
        "plain": base,
        "int heart rate": {**base, "heart_rate": [int(h) for h in base["heart_rate"]]},
        "speed null": {**base, "speed": None},
        "no positions": {k: v for k, v in base.items() if k not in ("latitude", "longitude")},
        "only latitude": {k: v for k, v in base.items() if k != "longitude"},
        "extra list key": {**base, "laps": [1, 2, 3]},
        "bracket in url": {**base, "url": "https://x/[1]"},
        "nested lists": nested,
        "booleans": {**base, "heart_rate": [True] * 500},
        "huge int": {**base, "timestamp": [2**70 + i for i in range(500)]},
        "string numbers": {**base, "altitude": [str(a) for a in base["altitude"]]},
        "apostrophe": {**base, "sport": "runner's"},
        "short": make_record(n=5),
        "list id": {**base, "id": [1, 2]},
    }


@pytest.mark.parametrize("name", list(_odd_records()))
def test_fast_parser_gives_the_same_as_the_careful_path(name):
    from hr_lstm.data import fitrec_batch as fitrec

    parser = fitrec.fast_parser()
    if parser is None:
        pytest.skip("pysimdjson is not installed: there is no fast path")
    line = str(_odd_records()[name]).encode()
    cfg, where = ParseConfig(), "f: line 1"
    prepared = fitrec.parse_fast(line, parser, cfg)
    if name in (
        "nested lists",
        "booleans",
        "huge int",
        "string numbers",
        "apostrophe",
        "short",
        "list id",
        "only latitude",
        "extra list key",
        "bracket in url",
    ):
        # declined (or, for the last three, counted the slow way) without changing the answer
        assert prepared is None or name in ("only latitude", "extra list key", "bracket in url")

    def convert(record):
        try:
            series, meta, _ = fitrec.records_to_series([(where, 1, record)], cfg)
            return series, [asdict(m) for m in meta]
        except DataError as exc:
            return str(exc)

    careful = convert(parse_line(line, where))
    fast = convert(prepared) if prepared is not None else careful
    if isinstance(careful, str):
        assert fast == careful
    else:
        assert np.array_equal(fast[0], careful[0]) and fast[1] == careful[1]


def test_progress_logs_a_line_every_n_workouts_off_a_terminal():
    from hr_lstm.data.ingest import Progress

    lines = []
    progress = Progress(lines.append, every=5)
    for _ in range(4):
        progress.update(3)
    progress.close()
    assert len(lines) == 2 and lines[0].startswith("  parsed 6 workouts (") and "/s)" in lines[0]


def test_cache_remembers_skip_bad(tmp_path, capsys):
    """A `--skip-bad` cache never lets a plain run pass a bad file; reused, it repeats its count."""
    path = _with_bad_line(tmp_path, 4, "{'altitude': [1, 2,")
    with pytest.raises(DataError) as uncached:
        load_workouts(path, cache=False, workers=1, **QUIET)
    assert _cli([str(path), "--skip-bad", "--workers", "1"]) == 0
    assert "(built now)" in capsys.readouterr().out
    with pytest.raises(HRLSTMError) as plain:
        _cli([str(path), "--workers", "1"])
    assert str(plain.value) == str(uncached.value) and str(plain.value).startswith(f"{path}: line 4: malformed record")
    assert _cli([str(path), "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "(reused)" in out, "the failed plain run left the --skip-bad cache as it was"
    assert f"Skipped 1 bad records (--skip-bad) when the cache was built; first: {path}: line 4: malformed" in out
