"""Simulator families: every variant writes data the project reads, each follows the laws it claims,
and `default` is the simulator as it was before variants."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json

import numpy as np
import pytest

from hr_lstm import paths
from hr_lstm.cli import common as cli_common
from hr_lstm.cli import data as cli_data
from hr_lstm.data.cache import load_workouts
from hr_lstm.data.simulate import FAMILIES, VARIANTS, SimConfig, load_truth, resolve_variant, simulate, variant_names
from hr_lstm.data.simulate.laws import cardiac_drift, heart_rate, running_flat_speed
from hr_lstm.data.simulate.physiology import acsm_vo2
from hr_lstm.data.simulate.sessions import draw_athletes
from hr_lstm.data.simulate.truth import sidecar_paths
from hr_lstm.data.simulate.variants import LAW_COLUMNS, draw_laws
from hr_lstm.data.source import DataConfig, load_clean_bpm, resolve_data_path
from hr_lstm.errors import HRLSTMError

SMALL = dict(n_users=4, seed=7, min_workouts=8, max_workouts=10)


def read_records(path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line.replace("'", '"')) for line in fh]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """variant -> (path, records, truth), all from the same seed; each simulated when first asked for."""
    folder, done = tmp_path_factory.mktemp("variants"), {}

    def get(name):
        if name not in done:
            path = folder / f"{name}.json.gz"
            simulate(SimConfig(**SMALL, variant=name), path)
            done[name] = path, read_records(path), load_truth(path)
        return done[name]

    return get


def athletes_of(n, variant, seed=0):
    cfg = SimConfig(n_users=n)
    return draw_laws(
        resolve_variant(variant), np.random.default_rng(seed), draw_athletes(np.random.default_rng(1), cfg), cfg
    )


@pytest.mark.parametrize("name", variant_names())
def test_every_variant_reads_back_with_its_truth(written, name):
    path, records, truth = written(name)
    workouts = load_workouts(path, cache=False, log=lambda *a: None, workers=1)
    assert len(workouts) == len(records) == len(truth.ids) >= 4 * 8
    assert truth.ids.tolist() == [r["id"] for r in records]
    clean = load_clean_bpm(path, workouts)
    assert clean is not None and clean.shape == (len(records), 500) and np.isfinite(clean).all()
    athletes = truth.athletes.set_index("userId")
    for record, hr in zip(records, clean):
        a = athletes.loc[record["userId"]]
        assert hr.min() >= a.hr_rest - 4 and hr.max() <= a.hr_max + 0.5
        assert np.all(np.diff(record["timestamp"]) >= 0)
    assert set(LAW_COLUMNS) <= set(truth.athletes) or name == "default"


def test_same_seed_same_bytes(tmp_path):
    for name in ("random", "fitrec_quirks"):
        files = []
        for run in ("a", "b"):
            path = tmp_path / run / f"{name}.json.gz"
            simulate(SimConfig(n_users=3, seed=2, min_workouts=2, max_workouts=3, seq_len=60, variant=name), path)
            files.append([p.read_bytes() for p in (path, *sidecar_paths(path))])
        assert files[0] == files[1]


def test_default_is_the_simulator_before_variants(tmp_path, written):
    """Hashes recorded from the simulator before variants existed (data text, clean HR, athletes file)."""
    path = tmp_path / "d.json.gz"
    simulate(SimConfig(n_users=2, seed=5, min_workouts=2, max_workouts=3, seq_len=60), path)
    digest = lambda data: hashlib.sha256(data).hexdigest()[:16]  # noqa: E731
    truth = load_truth(path)
    assert digest(gzip.decompress(path.read_bytes())) == "7b79fad52fe4a728"
    assert digest(truth.heart_rate_clean_bpm.tobytes()) == "d5df8a692560c676"
    assert digest(sidecar_paths(path)[1].read_bytes()) == "100d5e588d6b54e1"
    assert not set(LAW_COLUMNS) & set(truth.athletes)
    same = SimConfig(**SMALL, variant="default")
    simulate(same, tmp_path / "e.json.gz")
    assert (tmp_path / "e.json.gz").read_bytes() == written("default")[0].read_bytes()


def test_second_order_responds_more_slowly_than_fast_kinetics():
    steps = 301
    rise = {}
    for name in ("fast_kinetics", "second_order", "two_component", "slow_kinetics"):
        athletes = athletes_of(40, name).to_dict("records")
        n = len(athletes)
        dt = np.ones((n, steps))
        hr = heart_rate(
            athletes, np.full((n, steps), 160.0), dt, np.full(n, 100.0), np.zeros((n, steps)), np.full(n, 70.0)
        )
        rise[name] = (hr < 100 + 0.63 * 60).sum(axis=1)  # seconds to 63% of a 60 bpm step
        assert np.all(np.diff(hr, axis=1) >= -1e-9) and hr.max() <= 160.0
    assert rise["fast_kinetics"].max() < rise["second_order"].min()
    assert rise["fast_kinetics"].max() <= 31 and rise["slow_kinetics"].min() >= 59
    early = lambda name: np.median(rise[name])  # noqa: E731
    assert early("two_component") < early("slow_kinetics")  # the fast vagal part


def test_drift_laws():
    t = np.arange(0.0, 7200.0, 2.0)
    frac = np.full(t.shape, 0.7)
    drift = {
        law: cardiac_drift(dict(drift_law=law, drift_bpm_per_hour=6.0, drift_exponent=2.0), frac, t, 2.0)
        for law in ("linear", "none", "fatigue")
    }
    assert not drift["none"].any()
    assert drift["linear"][t < 600].max() == 0
    assert drift["linear"][-1] == pytest.approx(6.0 * (7200 - 600) / 3600, rel=0.01)
    half = len(t) // 2
    assert drift["fatigue"][-1] - drift["fatigue"][half] > 2.5 * drift["fatigue"][half]  # accelerates


def test_curvilinear_cost_rises_faster_than_the_acsm_line():
    speeds = np.array([2.0, 3.0, 4.5])  # m/s
    per_metre = lambda q: (acsm_vo2(speeds, 0.0, cost_exponent=q) - 3.5) / speeds  # noqa: E731
    assert np.ptp(per_metre(0.0)) < 1e-9 and np.all(np.diff(per_metre(0.4)) > 0)
    a = dict(economy=1.1, cost_exponent=0.4)
    back = acsm_vo2(running_flat_speed(np.array([30.0, 45.0]), a), 0.0, economy=1.1, cost_exponent=0.4) - 3.5
    assert back == pytest.approx([30.0, 45.0])


def test_variants_differ_in_what_they_claim(written):
    def stats(name):
        _, records, truth = written(name)
        recorded = np.array([r["heart_rate"] for r in records], float)
        gaps = np.concatenate([np.diff(r["timestamp"]) for r in records])
        clean_strap = truth.artefact_kind == 0
        return dict(
            repeats=(gaps == 0).mean(),
            long_gaps=(gaps > 60).mean(),
            no_speed=np.mean(["speed" not in r for r in records]),
            noise=np.abs(recorded - truth.heart_rate_clean_bpm)[clean_strap].mean(),
            clean=truth.heart_rate_clean_bpm.mean(),
        )

    default, quirks, sparse = stats("default"), stats("fitrec_quirks"), stats("sparse_sampling")
    assert default["repeats"] == 0 and 0.01 < quirks["repeats"] < 0.15
    assert quirks["no_speed"] > default["no_speed"] + 0.15
    assert sparse["long_gaps"] > 4 * default["long_gaps"]
    assert stats("noisy_sensors")["noise"] > 1.4 * default["noise"]
    assert stats("saturating")["clean"] > default["clean"] + 5  # high at moderate efforts
    assert stats("no_drift")["clean"] < default["clean"] - 1


def test_fitrec_quirks_hide_genders_and_speed_more_often():
    quirks, default = athletes_of(400, "fitrec_quirks"), athletes_of(400, "default")
    assert (quirks.gender == "unknown").mean() > 0.15 > 0.06 > (default.gender == "unknown").mean()
    assert quirks.speed_missing_prob.min() >= 0.5 and default.speed_missing_prob.mean() < 0.5
    assert (quirks.physiology_sex == default.physiology_sex).all()  # the same athletes underneath


def test_random_gives_athletes_different_laws(written):
    athletes = written("random")[2].athletes
    assert set(LAW_COLUMNS) <= set(athletes)
    varied = [family for family in FAMILIES if athletes[family].nunique() > 1]
    assert len(varied) >= 4
    many = athletes_of(300, "random")
    for family, laws in FAMILIES.items():
        assert set(many[family]) == set(laws)


def test_unknown_variant_is_one_line_listing_the_choices(tmp_path):
    with pytest.raises(HRLSTMError) as err:
        resolve_variant("third_order")
    message = str(err.value)
    assert "\n" not in message and "'third_order'" in message and all(name in message for name in VARIANTS)
    with pytest.raises(HRLSTMError, match="third_order"):
        simulate(SimConfig(n_users=1, variant="third_order"), tmp_path / "x.json.gz")
    parser = argparse.ArgumentParser()
    cli_common.add_data_arguments(parser)
    with pytest.raises(HRLSTMError, match="third_order"):
        cli_common.data_overrides(parser.parse_args(["--sim-variant", "third_order"]))
    assert cli_common.data_overrides(parser.parse_args(["--sim-variant", "fatigue"]))["data.sim_variant"] == "fatigue"
    assert not list(tmp_path.iterdir())


def test_cli_lists_variants_and_names_the_file(tmp_path, capsys, monkeypatch):
    parser = argparse.ArgumentParser()
    cli_data.add_synth_arguments(parser)
    assert cli_data.run_synth(parser.parse_args(["--list-variants"])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(VARIANTS) and all(len(line.split()) > 3 for line in lines)
    with pytest.raises(HRLSTMError, match="unknown simulator variant"):
        cli_data.run_synth(parser.parse_args(["--variant", "nope", "--out", str(tmp_path / "n.json.gz")]))
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path)
    assert paths.default_sim_data_path(60, 0).name == "sim_users60_seed0.json.gz"
    assert paths.default_sim_data_path(60, 0, "second_order").name == "sim_users60_seed0_second_order.json.gz"
    args = parser.parse_args(
        ["--users", "2", "--seed", "1", "--min-workouts", "2", "--max-workouts", "2", "--variant", "no_drift"]
    )
    assert cli_data.run_synth(args) == 0
    made = tmp_path / "simulated" / "sim_users2_seed1_no_drift.json.gz"
    assert set(load_truth(made).athletes.drift_law) == {"none"}


def test_training_data_follows_sim_variant(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path)
    assert DataConfig().sim_variant == "default"
    path = resolve_data_path(DataConfig(sim_users=2, sim_variant="second_order"))
    assert path == tmp_path / "simulated" / "sim_users2_seed0_second_order.json.gz"
    assert set(load_truth(path).athletes.kinetics_law) == {"second_order"}
    with pytest.raises(HRLSTMError, match="unknown simulator variant"):
        resolve_data_path(DataConfig(sim_users=2, sim_variant="bogus"))
