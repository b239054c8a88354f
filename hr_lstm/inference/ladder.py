"""The personalisation ladder: each rung fitted on an athlete's earlier workouts and scored on their
latest ones (the selection set), and the rung to keep chosen by those scores (`personalize` then refits
it on all of them)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .finetune import (
    BLEND_OF,
    RUNGS,
    PersonalizeConfig,
    blend_fits,
    fit_embedding_row,
    fit_weights,
    params_mae,
    params_pred,
    pretrained_params,
    rung_weights,
    with_row,
)


def selection_split(n: int, cfg: PersonalizeConfig) -> tuple[np.ndarray, np.ndarray]:
    """Positions (fit, selection) among `n` time-ordered workouts: the latest ~selection_fraction (at least 1)
    select; with fewer than `min_ladder_workouts` there is no selection set (all fit)."""
    if n < max(2, cfg.min_ladder_workouts):
        return np.arange(n), np.arange(0)
    k = min(n - 1, max(1, int(round(cfg.selection_fraction * n))))
    return np.arange(n - k), np.arange(n - k, n)


def choose_rung(selection_maes: dict[str, float]) -> str:
    """`blend`, unless the embedding alone has the lower selection MAE (then the weights only overfit).

    Not the lowest of the four: on a selection set of a few workouts that is as often chance as not. On 16
    simulated athletes of two families it cost 0.08 BPM against this rule, and on a real runner 0.2
    (docs/benchmarks.md, "Personalisation: blending the head and full fits"); averaging two fits is the
    steadier bet."""
    return "embedding" if selection_maes["embedding"] < selection_maes["blend"] else "blend"


def run_ladder(
    model, x_fit, y_fit, x_sel, y_sel, row, mean, spread, output_scale, rungs, cfg: PersonalizeConfig, progress=None
) -> list[dict]:
    """Each rung fitted on (x_fit, y_fit) and scored on the selection set (x_sel, y_sel), the model unchanged.

    The embedding rung is fitted once and is where head / full start; blend averages those two. One row per
    rung: rung, selection_mae (BPM), steps (the rung's own: for head / full, the weight steps kept after that
    start; for blend, theirs together), seconds, and
    selection_pred (the selection set as that fit predicts it, BPM: workouts it never saw, which is what
    the warm start is calibrated on; `pick_rung` takes it out of the row). `progress(line)` hears of each rung
    as it is done (a user waits on this)."""
    started = time.perf_counter()
    progress = progress or (lambda line: None)
    fitted, emb_steps = fit_embedding_row(model, x_fit, y_fit, row, mean, spread, output_scale, cfg)
    base = pretrained_params(model)
    ladder = [_scored(model, base, fitted, {}, x_sel, y_sel, row, "embedding", emb_steps, started)]
    progress(f"  rung 'embedding' fitted in {ladder[-1]['seconds']:.0f} s")
    fits = {}
    for rung in (r for r in RUNGS if r in rungs and r not in ("embedding", "blend")):
        started = time.perf_counter()
        names = rung_weights(model, rung)
        fit = fit_weights(model, x_fit, y_fit, row, mean, spread, fitted, output_scale, names, cfg, x_sel, y_sel)
        fits[rung] = fit
        ladder.append(_scored(model, base, fit.row, fit.weights, x_sel, y_sel, row, rung, fit.steps, started))
        progress(f"  rung '{rung}' fitted in {ladder[-1]['seconds']:.0f} s")
    if "blend" in rungs:  # no fit of its own: the average of the two fits just made
        started = time.perf_counter()
        blended_row, weights = blend_fits(base, [fits[r] for r in BLEND_OF])
        steps = sum(fits[r].steps for r in BLEND_OF)
        ladder.append(_scored(model, base, blended_row, weights, x_sel, y_sel, row, "blend", steps, started))
    return ladder


def _scored(model, base, fitted_row, weights, x_sel, y_sel, row, rung, steps, started) -> dict:
    pred = params_pred(model, with_row({**base, **weights}, row, fitted_row), x_sel, row)
    return {
        "rung": rung,
        "selection_mae": float((pred - y_sel).abs().mean()),
        "steps": steps,
        "seconds": round(time.perf_counter() - started, 3),
        "selection_pred": pred.cpu().numpy(),
    }


def fit_rung(
    rung, model, x, y, row, mean, spread, output_scale, cfg: PersonalizeConfig, steps: dict[str, int] | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
    """`rung` fitted on (x, y) without a selection set: (row, tuned weights, steps in all), the model unchanged.

    The embedding row as `fit_embedding_row` finds it; for head / full then `steps[rung]` weight steps from
    there (default `steps_without_selection`); for blend, head and full so and averaged (`blend_fits`)."""
    fitted, emb_steps = fit_embedding_row(model, x, y, row, mean, spread, output_scale, cfg)
    if rung == "embedding":
        return fitted, {}, emb_steps
    steps = steps or {}
    parts = BLEND_OF if rung == "blend" else (rung,)
    fits = [
        fit_weights(
            model, x, y, row, mean, spread, fitted, output_scale, rung_weights(model, r), cfg, steps=steps.get(r)
        )
        for r in parts
    ]
    if rung == "blend":
        fitted_row, weights = blend_fits(pretrained_params(model), fits)
    else:
        fitted_row, weights = fits[0].row, fits[0].weights
    return fitted_row, weights, emb_steps + sum(fit.steps for fit in fits)


@dataclass
class RungChoice:
    """Which rung to fit on all the workouts, and why."""

    rung: str
    reason: str
    ladder: list[dict]  # as `run_ladder` returns it, with `chosen`; empty without a selection set
    selection: np.ndarray  # positions of the selection workouts among those given; empty without
    steps: dict[str, int] | None  # weight steps of head / full on all the workouts (None: the fixed default)
    selection_mae_before: float | None = None  # the selection set with the mean embedding
    window: str = ""  # the selection set in words
    selection_pred: np.ndarray | None = None  # (len(selection), steps) BPM: the chosen rung fitted without them


def pick_rung(model, x, y, row, mean, spread, output_scale, cfg: PersonalizeConfig, progress=None) -> RungChoice:
    """The rung for (x, y), time-ordered workouts before the held-out one: `cfg.rung`, or for "auto" the
    blend or the embedding by their selection MAEs (`choose_rung`) when there are enough for a selection
    set, else `embedding`. A forced rung is still fitted without the selection set and scored on it when
    there is one: head / full take their step count from it, and its predictions of it calibrate the warm
    start."""
    n, plural = len(x), "" if len(x) == 1 else "s"
    fit_pos, sel_pos = selection_split(n, cfg)
    if not len(sel_pos):
        if cfg.rung == "embedding":
            return RungChoice("embedding", "asked for (rung=embedding)", [], sel_pos, None)
        if cfg.rung == "auto":
            reason = (
                f"only {n} workout{plural} before the held-out one (fewer than {cfg.min_ladder_workouts}): "
                "no selection set, so the embedding rung alone"
            )
            return RungChoice("embedding", reason, [], sel_pos, None)
        reason = (
            f"asked for (rung={cfg.rung}); only {n} workout{plural} before the held-out one, no selection set: "
            f"{cfg.steps_without_selection} weight steps after the embedding"
        )
        return RungChoice(cfg.rung, reason, [], sel_pos, None)
    tried = RUNGS if cfg.rung == "auto" else ("embedding", *(BLEND_OF if cfg.rung == "blend" else ()), cfg.rung)
    x_fit, y_fit, x_sel, y_sel = x[fit_pos], y[fit_pos], x[sel_pos], y[sel_pos]
    ladder = run_ladder(model, x_fit, y_fit, x_sel, y_sel, row, mean, spread, output_scale, tried, cfg, progress)
    before = params_mae(model, pretrained_params(model), x_sel, y_sel, row)
    maes = {r["rung"]: r["selection_mae"] for r in ladder}
    best = min(maes, key=maes.get)
    window = f"the latest {len(sel_pos)} of the {n} workouts, fitted on the earlier {len(fit_pos)}"
    if cfg.rung != "auto":
        rung, reason = cfg.rung, f"asked for (rung={cfg.rung}); selection MAE {maes[cfg.rung]:.1f} BPM"
    else:
        rung = choose_rung(maes)
        emb, blend = maes["embedding"], maes["blend"]
        if rung == "embedding":
            reason = f"the embedding alone scores lower ({emb:.1f} BPM) than the blend ({blend:.1f})"
        else:
            reason = f"the blend of head and full: selection MAE {blend:.1f} BPM (the embedding alone: {emb:.1f})"
            if best != "blend":
                reason += f"; '{best}' scored {maes[best]:.1f}, but one rung's lead on a few workouts is mostly chance"
    predicted = {r["rung"]: r.pop("selection_pred", None) for r in ladder}  # arrays stay out of the checkpoint
    for r in ladder:
        r["chosen"] = r["rung"] == rung
    steps = {r["rung"]: r["steps"] for r in ladder if r["rung"] in ("head", "full")}
    return RungChoice(rung, reason, ladder, sel_pos, steps, before, window, predicted.get(rung))


def ladder_lines(ladder: list[dict], selection_before: float | None = None) -> list[str]:
    """The ladder as a small table: rung, selection MAE, steps; the chosen one marked."""
    lines = [f"  {'rung':<10} {'selection MAE':>13} {'steps':>6}"]
    if selection_before is not None:
        lines.append(f"  {'(none)':<10} {selection_before:>9.1f} BPM {0:>6}  the mean embedding, for reference")
    for r in ladder:
        mae = "" if r["selection_mae"] is None else f"{r['selection_mae']:.1f} BPM"
        lines.append(f"  {r['rung']:<10} {mae:>13} {r['steps']:>6}" + ("  <- chosen" if r.get("chosen") else ""))
    return lines
