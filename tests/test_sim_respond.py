"""A simulated athlete running a given pace: the simulator's own laws, for the planner check."""

from __future__ import annotations

import numpy as np
import pytest

from hr_lstm.data.simulate import SimConfig, simulate, variant_names
from hr_lstm.data.simulate.laws import heart_rate
from hr_lstm.data.simulate.respond import day_form_bpm, load_athletes, true_heart_rate_bpm
from hr_lstm.data.simulate.routes import MAX_GRADE, flat_route, hilly_route
from hr_lstm.data.simulate.sessions import plan_workouts, workout_signals
from hr_lstm.errors import DataError


@pytest.fixture(scope="module")
def athletes(tmp_path_factory):
    """The athletes of each variant (6 each), and the default variant's csv, which carries no law columns."""
    folder = tmp_path_factory.mktemp("respond")
    out = {}
    for variant in variant_names():
        path = folder / f"{variant}.json.gz"
        simulate(SimConfig(n_users=6, seed=4, min_workouts=3, max_workouts=3, variant=variant), path)
        out[variant] = load_athletes(path)
    return out


def steady(athlete, v_kmh=10.0, minutes=60.0, grade=0.0, **kwargs):
    t = np.arange(0.0, minutes * 60 + 1, 5.0)
    return t, true_heart_rate_bpm(athlete, "run", t, np.full(t.size, v_kmh), grade * t * v_kmh / 3.6, **kwargs)


def test_the_simulators_own_workout_is_reproduced(athletes):
    """A workout without stops or pauses, run through respond on its own true speed and altitude, gets the
    simulator's heart rate to within a few BPM: the simulator averages the demand over each recorded interval
    and integrates on its own grid; respond uses an even 2-second grid."""
    cfg = SimConfig(n_users=1, seed=9, stops_per_workout=0.0)
    a = athletes["default"].iloc[0].to_dict() | {"pauses_per_workout": 0.0}
    w = plan_workouts(np.random.default_rng(1), a, cfg, 1.6e9)[0]
    s = workout_signals(np.random.default_rng(2), a, w, cfg)
    dt = s["dt"]
    reference = heart_rate(
        [a], s["demand"][None], dt[None], np.array([s["hr0"]]), s["pause"][None], np.array([s["hr_rest"] + 10])
    )[0]
    ours = true_heart_rate_bpm(
        a, w["sport"], s["m"], s["speed_ms"] * 3.6, s["altitude"], w["form_bpm"], w["hist_frac"], s["hr0"]
    )
    assert np.mean(np.abs(ours - reference)) < 1.5  # 0.52 BPM when written
    assert np.corrcoef(ours, reference)[0, 1] > 0.9


def test_the_laws_pull_the_right_way(athletes):
    a = athletes["default"].iloc[0]
    slow, fast = steady(a, 8.0)[1], steady(a, 12.0)[1]
    assert fast.mean() > slow.mean() + 5  # faster: higher
    assert steady(a, 10.0, grade=0.05)[1].mean() > steady(a, 10.0)[1].mean() + 5  # uphill: higher
    assert np.allclose(steady(a, 10.0, form_bpm=4.0)[1][-100:], steady(a, 10.0)[1][-100:] + 4.0, atol=0.5)
    t, hr = steady(a, 10.0, minutes=90)
    settled = (t > 900) & (t < 1200)
    assert hr[-1] > hr[settled].mean() + 2  # drift (the default law: linear)
    assert hr.max() <= a["hr_max"] + 1e-6


def test_kinetics_follow_the_athletes_time_constant(athletes):
    """After a step up in speed, the heart rate has covered ~63% of its rise after tau_on."""
    a = athletes["default"].iloc[0].to_dict() | {"drift_bpm_per_hour": 0.0}
    t = np.arange(0.0, 1200.0, 1.0)
    hr = true_heart_rate_bpm(a, "run", t, np.where(t < 600, 7.0, 12.0), np.zeros(t.size), hr0_bpm=None)
    before, after = hr[599], hr[-1]
    k = int(600 + a["tau_on_s"])
    assert (hr[k] - before) / (after - before) == pytest.approx(1 - np.exp(-1), abs=0.08)


def test_every_variant_and_the_default_csv(athletes):
    assert "kinetics_law" in athletes["default"]  # filled in: the default csv has no law columns
    t = np.linspace(0, 1800, 200)
    for variant, table in athletes.items():
        for _, a in table.iterrows():
            for sport in ("run", "bike", "walk"):
                hr = true_heart_rate_bpm(
                    a, sport, t, np.full(t.size, 20.0 if sport == "bike" else 9.0), np.zeros(t.size)
                )
                assert np.all(np.isfinite(hr)) and hr.min() > 30 and hr.max() <= a["hr_max"] + 1e-6, variant


def test_load_athletes_names_a_missing_sidecar(tmp_path):
    with pytest.raises(DataError, match="nothing.athletes.csv"):
        load_athletes(tmp_path / "nothing.json.gz")


def test_routes_and_form():
    d, alt = hilly_route(np.random.default_rng(1), 10.0, 150.0)
    d2, alt2 = hilly_route(np.random.default_rng(1), 10.0, 150.0)
    assert np.array_equal(alt, alt2) and d[-1] == pytest.approx(10_000)
    assert np.abs(np.diff(alt) / np.diff(d)).max() <= MAX_GRADE + 1e-9
    assert np.clip(np.diff(alt), 0, None).sum() == pytest.approx(150.0, rel=0.1)
    assert np.ptp(flat_route(5.0)[1]) == 0
    forms = day_form_bpm(None, np.random.default_rng(0), 4000)
    assert abs(forms.mean()) < 0.2 and forms.std() == pytest.approx(3.0, rel=0.05)
