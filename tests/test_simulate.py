"""The simulator writes FitRec-format workouts that behave like real ones."""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest

from hr_lstm.cli import data as cli_data
from hr_lstm.data import simulate as sim
from hr_lstm.data.simulate import SimConfig
from hr_lstm.data.simulate import driver as sim_driver
from hr_lstm.errors import HRLSTMError

FITREC_KEYS = [
    "altitude",
    "gender",
    "heart_rate",
    "id",
    "latitude",
    "longitude",
    "speed",
    "sport",
    "timestamp",
    "url",
    "userId",
]
SMALL = dict(n_users=4, seed=7, min_workouts=12, max_workouts=14)


def read_records(path, fast=False):
    """Parse each line as a Python literal (or, fast, as JSON after swapping quotes: no apostrophes here)."""
    parse = (lambda line: json.loads(line.replace("'", '"'))) if fast else ast.literal_eval
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [parse(line) for line in fh]


def haversine_m(lat, lon):
    lat, lon = np.radians(lat), np.radians(lon)
    a = np.sin(np.diff(lat) / 2) ** 2 + np.cos(lat[:-1]) * np.cos(lat[1:]) * np.sin(np.diff(lon) / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(a))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "nested" / "s.json.gz"  # parent folder does not exist yet
    summary = sim.simulate(SimConfig(**SMALL), path)
    return summary, read_records(path), sim.load_truth(path)


def test_file_is_gzipped_fitrec_dict_literals(small):
    summary, records, _ = small
    assert summary.path.read_bytes()[:2] == b"\x1f\x8b"
    assert len(records) == summary.n_workouts >= 4 * 12 and summary.n_users == 4
    lines = gzip.open(summary.path, "rt").read().splitlines()
    for line, record in zip(lines, records):
        assert line == str(record)  # Python dict literal, single quotes, like the public file
        assert list(record) == [k for k in FITREC_KEYS if k in record]
        assert set(FITREC_KEYS) - set(record) <= {"speed"}
        for key in ("altitude", "heart_rate", "latitude", "longitude", "speed", "timestamp"):
            if key in record:
                assert len(record[key]) == 500, key
        ts = np.array(record["timestamp"])
        assert all(isinstance(t, int) for t in record["timestamp"]) and np.all(np.diff(ts) > 0)
        assert len(set(np.diff(ts).tolist())) > 3  # unevenly spaced
        assert 15 * 60 <= ts[-1] - ts[0] <= 130 * 60
        assert record["sport"] in {"run", "bike", "mountain bike", "walk"}
        assert record["gender"] in {"male", "female", "unknown"}
        url = rf"https://www\.endomondo\.com/users/{record['userId']}/workouts/{record['id']}"
        assert re.fullmatch(url, record["url"])
    assert len({r["id"] for r in records}) == len(records)
    missing = sum("speed" not in r for r in records) / len(records)
    assert 0.1 < missing < 0.8  # about 40%: the reader must derive speed from positions


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    cfg = dict(n_users=2, min_workouts=2, max_workouts=3, seq_len=60)
    sim.simulate(SimConfig(seed=1, **cfg), tmp_path / "a.json.gz")
    sim.simulate(SimConfig(seed=1, **cfg), tmp_path / "b" / "b.json.gz")
    sim.simulate(SimConfig(seed=2, **cfg), tmp_path / "c.json.gz")
    a = (tmp_path / "a.json.gz").read_bytes()
    assert {len(r["heart_rate"]) for r in read_records(tmp_path / "a.json.gz", fast=True)} == {60}
    assert a == (tmp_path / "b" / "b.json.gz").read_bytes()
    assert a != (tmp_path / "c.json.gz").read_bytes()
    assert np.array_equal(
        sim.load_truth(tmp_path / "a.json.gz").heart_rate_clean_bpm,
        sim.load_truth(tmp_path / "b" / "b.json.gz").heart_rate_clean_bpm,
    )


def test_clean_heart_rate_within_each_athletes_range(small):
    _, records, truth = small
    athletes = truth.athletes.set_index("userId")
    for record, clean in zip(records, truth.heart_rate_clean_bpm):
        a = athletes.loc[record["userId"]]
        assert clean.min() >= max(40.0, a.hr_rest - 4) and clean.max() <= a.hr_max + 0.5
    assert truth.heart_rate_clean_bpm.max() > 150  # hard efforts reach high heart rates


def test_kinetics_lag_one_time_constant_to_63_percent():
    dt = np.ones(601)
    hr = sim.hr_kinetics(np.full(601, 150.0), dt, hr0_bpm=100.0, tau_on_s=60.0, tau_off_s=90.0)
    assert hr[0] == 100.0 and hr[10] < 120  # lags behind a step in demand
    assert hr[60] == pytest.approx(100 + 50 * (1 - np.exp(-1)), abs=0.01)  # 63% after tau
    # Exact per-step solution: a coarse grid lands on the same values and never overshoots.
    coarse = sim.hr_kinetics(np.full(3, 150.0), np.array([0.0, 30.0, 30.0]), 100.0, 60.0, 90.0)
    assert coarse[2] == pytest.approx(hr[60], abs=1e-9)
    assert sim.hr_kinetics(np.full(2, 150.0), np.array([0.0, 1e6]), 100.0, 60.0, 90.0)[1] == pytest.approx(150.0)
    # Off-kinetics are slower than on-kinetics; a pause lets HR relax toward rest.
    down = sim.hr_kinetics(np.full(61, 100.0), dt[:61], 150.0, 60.0, 90.0)
    assert down[60] > 100 + 50 * np.exp(-1) + 3
    paused = sim.hr_kinetics(
        np.full(2, 150.0), np.array([0.0, 1.0]), 150.0, 60.0, 90.0, pause_s=np.array([0.0, 300.0]), rest_bpm=70.0
    )
    assert paused[1] < 100
    batch = sim.hr_kinetics(np.full((2, 61), 150.0), dt[:61], [100.0, 100.0], [30.0, 90.0], 90.0)
    assert batch[0, 30] > batch[1, 30]  # one time constant per athlete


def test_demand_rises_with_speed_and_grade():
    speeds = np.array([2.0, 3.0, 4.0])
    run = sim.acsm_vo2(speeds, 0.0)
    assert np.all(np.diff(run) > 0) and run[1] == pytest.approx(3.5 + 0.2 * 180)
    assert sim.acsm_vo2(3.0, 0.05) > sim.acsm_vo2(3.0, 0.0) > sim.acsm_vo2(3.0, -0.05) > 3.5
    assert sim.acsm_vo2(1.5, 0.1, walking=True) > sim.acsm_vo2(1.5, 0.0, walking=True)
    power = sim.cycling_power_w(np.array([5.0, 8.0, 11.0]), 0.0, 85.0)
    assert np.all(np.diff(power) > 0) and sim.cycling_power_w(5.0, 0.05, 85.0) > power[0] + 150
    v = sim.cycling_speed_ms(np.array([50.0, 200.0, 300.0]), np.array([0.0, 0.04, -0.03]), 85.0)
    back = sim.cycling_power_w(v, np.array([0.0, 0.04, -0.03]), 85.0)
    assert back == pytest.approx([50.0, 200.0, 300.0], rel=1e-6)
    hr = sim.demand_bpm(sim.acsm_vo2(speeds, 0.0), 50.0, 60.0, 190.0)
    assert np.all(np.diff(hr) > 15) and np.all((hr > 60) & (hr <= 190))
    assert sim.demand_bpm(sim.acsm_vo2(3.0, 0.06), 50.0, 60.0, 190.0) > hr[1] + 10


def test_heart_rate_rises_with_speed_in_the_data(tmp_path):
    path = tmp_path / "run.json.gz"
    sim.simulate(
        SimConfig(
            n_users=6,
            seed=11,
            min_workouts=12,
            max_workouts=12,
            sport_mix={"run": 1.0},
            main_sport_share=1.0,
            speed_missing_fraction=0.0,
        ),
        path,
    )
    records, truth = read_records(path, fast=True), sim.load_truth(path)
    speed = np.array([r["speed"] for r in records])
    users = np.array([r["userId"] for r in records])
    clean = truth.heart_rate_clean_bpm
    at_pace = []
    for user in np.unique(users):
        mine = users == user
        slow, fast = clean[mine][speed[mine] < 5.0], clean[mine][speed[mine] > 9.0]
        if slow.size > 50 and fast.size > 50:
            assert fast.mean() > slow.mean() + 10
        band = (speed[mine] > 8.0) & (speed[mine] < 10.0)
        if band.sum() > 100:
            at_pace.append(clean[mine][band].mean())
    # Athletes differ: the same pace costs them different heart rates.
    assert len(at_pace) >= 3 and np.ptp(at_pace) > 8
    a = truth.athletes
    assert a.hr_rest.nunique() == len(a) and np.ptp(a.hr_max) > 5 and np.ptp(a.vo2max) > 3


def test_each_athlete_has_months_of_history_in_time_order(small):
    _, records, _ = small
    spans = []
    for user in {r["userId"] for r in records}:
        mine = [r for r in records if r["userId"] == user]
        assert len(mine) >= 12
        for before, after in zip(mine, mine[1:]):
            assert after["timestamp"][0] > before["timestamp"][-1]  # in order, never overlapping
        spans.append((mine[-1]["timestamp"][0] - mine[0]["timestamp"][0]) / 86400)
    assert min(spans) > 30 and max(spans) > 60


def test_positions_agree_with_device_speed(small):
    _, records, _ = small
    errors = []
    for r in records:
        if "speed" not in r:
            continue
        derived = haversine_m(np.array(r["latitude"]), np.array(r["longitude"])) / np.diff(r["timestamp"]) * 3.6
        device = np.array(r["speed"][1:])
        moving = device > 3.0
        errors.append(np.abs(derived[moving] - device[moving]) / device[moving])
    errors = np.concatenate(errors)
    assert 0.005 < np.median(errors) < 0.2  # GPS noise: close, never exact


def test_sidecars_match_the_data_file(small, tmp_path):
    summary, records, truth = small
    npz, csv = sim.sidecar_paths(summary.path)
    assert npz.exists() and csv.exists()
    written = sorted(p.name for p in summary.path.parent.iterdir())
    assert written == sorted([summary.path.name, npz.name, csv.name])  # no temporaries left behind
    assert truth.ids.dtype == np.int64 and truth.ids.tolist() == [r["id"] for r in records]
    assert truth.user_ids.tolist() == [r["userId"] for r in records]
    assert truth.heart_rate_clean_bpm.dtype == np.float32 and truth.heart_rate_clean_bpm.shape == (len(records), 500)
    assert len(truth.athletes) == 4 and set(truth.athletes.userId) == {r["userId"] for r in records}
    for column in ("gender", "age", "hr_rest", "hr_max", "vo2max", "tau_on_s", "tau_off_s", "drift_bpm_per_hour"):
        assert column in truth.athletes
    assert (truth.athletes.tau_off_s > truth.athletes.tau_on_s).all()
    plain = tmp_path / "real.json.gz"
    plain.write_bytes(b"")
    assert sim.load_truth(plain) is None


def test_sidecar_paths_strip_json_and_gz(tmp_path):
    assert sim.sidecar_paths("/tmp/s.json.gz") == (Path("/tmp/s.truth.npz"), Path("/tmp/s.athletes.csv"))
    assert sim.sidecar_paths("d/x.json")[0].name == "x.truth.npz"


def test_noise_floor_small_but_nonzero(small):
    _, records, truth = small
    recorded = np.array([r["heart_rate"] for r in records], float)
    errors = np.abs(recorded - truth.heart_rate_clean_bpm).mean(axis=1)
    clean_strap = truth.artefact_kind == 0
    assert 1.0 < errors[clean_strap].mean() < 4.0
    assert errors.mean() >= errors[clean_strap].mean()


def test_artefacts_and_broken_workouts(tmp_path):
    path = tmp_path / "bad.json.gz"
    sim.simulate(
        SimConfig(n_users=3, seed=5, min_workouts=12, max_workouts=12, artefact_fraction=0.3, broken_fraction=0.3), path
    )
    records, truth = read_records(path, fast=True), sim.load_truth(path)
    hr = np.array([r["heart_rate"] for r in records], float)
    implausible = ((hr > 230) | (hr < 30)).mean(axis=1)
    kinds = truth.artefact_kind
    assert (kinds == 3).any() and (kinds == 0).any() and ((kinds == 1) | (kinds == 2)).any()
    assert (implausible[kinds == 3] > 0.25).all()
    assert (implausible[kinds == 0] == 0).all()
    for r, row, kind in zip(records, hr, kinds):
        if kind == 1:  # locked onto running cadence for a stretch
            assert ((row > 155) & (row < 190)).sum() >= 20


def test_crash_leaves_previous_file_and_no_temporaries(tmp_path, monkeypatch):
    path = tmp_path / "s.json.gz"
    path.write_bytes(b"old")
    calls = []

    def exploding(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    real = sim_driver.record_workout
    monkeypatch.setattr(sim_driver, "record_workout", exploding)
    with pytest.raises(RuntimeError):
        sim.simulate(SimConfig(n_users=2, min_workouts=3, max_workouts=3), path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json.gz"]


def test_cli_hook_prints_one_summary_line(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    cli_data.add_synth_arguments(parser)
    out = tmp_path / "cli.json.gz"
    args = parser.parse_args(
        ["--users", "2", "--out", str(out), "--seed", "3", "--min-workouts", "2", "--max-workouts", "3"]
    )
    assert cli_data.run_synth(args) == 0
    printed = capsys.readouterr().out.strip()
    n = sum(1 for _ in gzip.open(out, "rt"))
    assert re.fullmatch(
        rf"Wrote {n:,} workouts from 2 simulated athletes to {re.escape(str(out))} "
        r"\(\+ truth sidecar\) in \d+\.\d s",
        printed,
    )
    bad = parser.parse_args(["--users", "2", "--out", str(out), "--min-workouts", "5", "--max-workouts", "3"])
    with pytest.raises(HRLSTMError, match="min_workouts"):
        cli_data.run_synth(bad)
    with pytest.raises(HRLSTMError, match="n_users"):
        sim.simulate(SimConfig(n_users=0), out)
