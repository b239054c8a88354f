"""Planning on a route: the time axis a pace makes, the model's inputs for it, and the pace under a ceiling."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from hr_lstm.cli import main as cli_main
from hr_lstm.data.route import STEP_M, Route, read_route
from hr_lstm.errors import DataError, HRLSTMError
from hr_lstm.inference.plan import (
    PlanConfig,
    even_pace,
    format_pace,
    parse_pace,
    parse_zone,
    plan_for_ceiling,
    plan_model,
    predict_plan,
)
from hr_lstm.inference.plan_inputs import timeline
from hr_lstm.training.trained import TrainedModel

TINY = ["--hidden_size", "16", "--num_layers", "1", "--embedding_dim", "4", "--batch_size", "16", "--lr", "0.02"]


@pytest.fixture(scope="module")
def checkpoint(sim_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plan_checkpoint")
    with contextlib.redirect_stdout(io.StringIO()):
        argv = ["train", "--epochs", "6", "--data", str(sim_data), "--out", str(out), "--threads", "1", *TINY]
        assert cli_main(argv) == 0
    return out / "lstm_embeddings_best.pt"


@pytest.fixture(scope="module")
def model(checkpoint) -> TrainedModel:
    return TrainedModel.load(checkpoint)


def hilly(length_m=6000.0, name="hilly") -> Route:
    d = np.arange(0.0, length_m + 1, 5.0)
    return Route.from_profile(d, 100 + 30 * np.sin(d / 700) + 8 * np.sin(d / 180), name)


def route_gpx(path: Path, n=200, elevation=True) -> Path:
    """A GPX route (<rte>): positions 25 m apart heading north, no times."""
    points = "".join(
        f'<rtept lat="{48 + i * 25 / 111_195:.7f}" lon="11">'
        + (f"<ele>{300 + 20 * np.sin(i / 20):.1f}</ele>" if elevation else "")
        + "</rtept>"
        for i in range(n)
    )
    path.write_text(
        f'<gpx xmlns="http://www.topografix.com/GPX/1/1" version="1.1" creator="t"><rte>{points}</rte></gpx>'
    )
    return path


def test_pace_parsing():
    assert parse_pace("5:00/km") == pytest.approx(12.0)
    assert parse_pace("5:00") == pytest.approx(12.0)
    assert parse_pace("8:03/mi") == pytest.approx(60 / (8.05 / 1.609344))
    assert format_pace(12.0) == "5:00/km"
    assert parse_zone("150-165") == (150.0, 165.0)
    for bad in ("5.10", "5:70/km", "0:00", "fast"):
        with pytest.raises(HRLSTMError, match="--pace"):
            parse_pace(bad)
    with pytest.raises(HRLSTMError, match="--zone"):
        parse_zone("165-150")


def test_route_from_a_gpx_route_without_times(tmp_path):
    route = read_route(route_gpx(tmp_path / "course.gpx"))
    assert route.length_m == pytest.approx(199 * 25, rel=0.01)
    assert np.allclose(np.diff(route.distance_m)[:-1], STEP_M)
    assert route.altitude_m.min() > 270 and route.altitude_m.max() < 330
    flat = read_route(route_gpx(tmp_path / "flat.gpx", elevation=False))
    assert flat.altitude_m is None and flat.climb_m == 0.0  # unknown, not sea level
    with pytest.raises(DataError, match="course.txt"):
        (tmp_path / "course.txt").write_text("not a route")
        read_route(tmp_path / "course.txt")
    with pytest.raises(DataError, match="short.gpx.*at least"):
        read_route(route_gpx(tmp_path / "short.gpx", n=5))


def test_time_axis_from_pace(model):
    """An even 10 km/h over 5 km takes 30 minutes, sampled evenly; distance and altitude follow the pace."""
    route = hilly(5000.0)
    plan = predict_plan(model, route, 10.0)
    assert plan.finish_s == pytest.approx(1800.0)
    assert np.allclose(plan.time_s, np.linspace(0, 1800, model.config.parse.seq_len))
    assert np.allclose(plan.distance_m, plan.time_s * 10 / 3.6)
    assert np.allclose(plan.altitude_m, route.altitude_at(plan.distance_m), atol=1e-6)
    # Faster on the first half: that half takes less time, so more of the samples fall in the second half.
    speeds = np.where(route.distance_m[1:] <= 2500, 12.0, 8.0)
    uneven = predict_plan(model, route, speeds)
    assert uneven.finish_s == pytest.approx(2500 / (12 / 3.6) + 2500 / (8 / 3.6), rel=1e-3)
    assert np.mean(uneven.distance_m > 2500) > 0.55
    assert list(uneven.splits()["pace"][:2]) == ["5:00/km", "5:00/km"]
    assert list(uneven.splits()["pace"][-2:]) == ["7:30/km", "7:30/km"]


def test_plan_inputs_match_the_feature_pipeline(model):
    """The inputs built in torch for a plan are those `features.build_inputs` builds for the same workout."""
    route = hilly()
    pm = plan_model(model, route, PlanConfig(user=model.user_ids[0]))
    speeds = torch.as_tensor(9 + 3 * np.sin(route.distance_m[1:] / 500))
    tl = timeline(route, speeds, pm.seq_len)
    ws = pm.workout_set(tl.time_s.numpy(), tl.speed_kmh.numpy(), tl.altitude_m.numpy())
    assert np.allclose(pm.inputs(tl)[0].numpy(), model.inputs(ws)[0].numpy(), atol=1e-4)


def test_speed_changes_move_the_prediction_through_autograd(model):
    route = hilly()
    pm = plan_model(model, route, PlanConfig())
    speeds = torch.full((len(route.distance_m) - 1,), 10.0, dtype=torch.float64, requires_grad=True)
    pm.predict_bpm(timeline(route, speeds, pm.seq_len)).mean().backward()
    assert speeds.grad is not None and torch.isfinite(speeds.grad).all() and speeds.grad.abs().sum() > 0


def test_plan_respects_the_ceiling_on_the_model(model):
    route = hilly()
    probe = predict_plan(model, route, 10.0)
    ceiling = float(np.percentile(probe.predicted_bpm, 80))  # reachable, and binding at 10 km/h
    cfg = PlanConfig(max_hr_bpm=ceiling, iterations=30)
    even = even_pace(model, route, cfg)
    assert even.predicted_bpm.max() <= ceiling + 1e-6
    assert predict_plan(model, route, even.stretch_speed_kmh[0] * 1.03, cfg).predicted_bpm.max() > ceiling  # tight
    plan = plan_for_ceiling(model, route, cfg, even=even)
    assert plan.predicted_bpm.max() <= ceiling + 1e-6
    assert plan.time_over_ceiling() == 0.0
    assert plan.finish_s <= even.finish_s + 1e-6
    lo, hi = even.stretch_speed_kmh[0] / cfg.max_speed_ratio, even.stretch_speed_kmh[0] * cfg.max_speed_ratio
    assert plan.stretch_speed_kmh.min() >= lo * 0.5 - 1e-6 and plan.stretch_speed_kmh.max() <= hi + 1e-6


def test_unreachable_ceiling_says_so(model):
    with pytest.raises(HRLSTMError, match="out of reach"):
        even_pace(model, hilly(), PlanConfig(max_hr_bpm=40))


def test_plan_command(checkpoint, tmp_path, capsys):
    route = route_gpx(tmp_path / "course.gpx", n=240)
    out = tmp_path / "plans"
    assert cli_main(["plan", str(route), "--checkpoint", str(checkpoint), "--pace", "6:00/km", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Finish 0:35:" in printed  # 5.98 km at 6:00/km
    assert {p.name for p in out.iterdir()} == {"course_plan.csv", "course_splits.csv", "course_plan.png"}
    assert cli_main(["plan", str(tmp_path / "nope.gpx"), "--checkpoint", str(checkpoint), "--max-hr", "160"]) == 2
    assert "nope.gpx: no such file" in capsys.readouterr().err


def test_a_plan_longer_than_any_training_workout_says_it_is_extrapolated(model):
    longest = model.longest_workout_s  # recorded at training: the longest workout of the training split
    assert longest is not None and 600 < longest < 4 * 3600
    route = hilly(length_m=6000.0)
    slow = predict_plan(model, route, 6000 / 1000 / (1.5 * longest / 3600))  # takes 1.5x the longest
    quick = predict_plan(model, route, 6000 / 1000 / (0.5 * longest / 3600))
    assert any("extrapolated" in note for note in slow.notes)
    assert not any("extrapolated" in note for note in quick.notes)


def test_safe_plan_keeps_the_band_under_the_ceiling(model):
    route = hilly()
    probe = predict_plan(model, route, 10.0)
    ceiling = float(np.percentile(probe.high_bpm, 80))
    cfg = PlanConfig(max_hr_bpm=ceiling, safe=True, iterations=20)
    plan = plan_for_ceiling(model, route, cfg)
    assert plan.high_bpm.max() <= ceiling + 1e-6 and plan.time_over_ceiling() == 0.0
    plain = plan_for_ceiling(model, route, PlanConfig(max_hr_bpm=ceiling, iterations=20))
    assert plan.finish_s > plain.finish_s  # the margin costs time


def test_plan_check_runs_plans_through_the_simulated_athletes_true_laws(model):
    from hr_lstm.evaluation.plan_check import PlanCheckConfig, check_plans, simulated_athletes, summary

    athletes = simulated_athletes(model)
    assert athletes is not None and "kinetics_law" in athletes  # the training data's truth, laws filled in
    cfg = PlanCheckConfig(n_athletes=2, n_days=3, courses=(("hilly 3 km", 3.0, 40.0),), iterations=10, sport="run")
    table = check_plans(model, athletes, cfg, log=lambda *a: None)
    assert len(table) == 2 and set(table["athlete"]) <= set(model.user_ids)
    done = table[table["planned"]]
    assert ((done["over_plan"] >= 0) & (done["over_plan"] <= 1)).all()
    assert (done["plan_finish_min"] <= done["even_finish_min"] + 1e-9).all()
    assert summary(table).loc["hilly 3 km", "planned"] + summary(table).loc["hilly 3 km", "out_of_reach"] == 2


def test_a_route_no_course_has_is_refused_and_a_steep_real_one_is_not():
    """Elevation alternating 100 / 3,000 m every 50 m ("19,741 m of climbing" over 5 km) is a damaged channel;
    the example course (27 m in its steepest 100 m) plans as before; sentinel altitudes are missing."""
    from hr_lstm.paths import EXAMPLE_ROUTE

    d = np.arange(0, 5000, 50.0)
    with pytest.raises(DataError, match="steeper than any course"):
        Route.from_profile(d, np.where(np.arange(len(d)) % 2, 3000.0, 100.0), name="zigzag.gpx")
    assert read_route(EXAMPLE_ROUTE).climb_m > 150
    sentinel = Route.from_profile(d, np.where(np.arange(len(d)) == 40, 4294967295.0, 200.0 + d / 100))
    assert sentinel.altitude_m.max() < 260
