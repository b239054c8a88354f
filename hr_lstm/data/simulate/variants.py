"""Simulator families (domain randomisation): which laws, not just which parameters, the data follows.

A recipe tuned on one simulator can ride on that simulator's quirks, so the simulator comes in
variants whose laws differ; recipes are chosen on some and reported on held-out ones (leave one
family out). A `SimVariant` names one law per family (FAMILIES: kinetics, drift, effort curve,
cost of speed, sampling, sensors) or RANDOM, meaning each athlete draws that law uniformly.
`draw_laws` gives each athlete its laws and their parameters from a stream of its own, so the
athletes, their plans and the `default` variant's bytes stay as they were. laws.py applies them;
docs/physiology.md, "7. Simulator families (domain randomisation)", describes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...errors import HRLSTMError
from .config import SimConfig
from .physiology import running_gain_bpm_per_mps

RANDOM = "random"
FAMILIES = {
    "kinetics_law": {
        "first_order": "first order toward the demand, tau_on 20-120 s, off 1.2-1.8x slower",
        "fast": "first order, tau_on 10-30 s",
        "slow": "first order, tau_on 60-150 s",
        "symmetric": "first order, off as fast as on",
        "second_order": "two cascaded first-order stages of 20-50 s: an S-shaped rise",
        "two_component": "fast vagal part (5-20 s, 40-70% of a change) plus slow sympathetic part (60-180 s)",
    },
    "drift_law": {
        "linear": "2-15 bpm per hour of work at 70% VO2max, after the first 10 minutes",
        "none": "no drift",
        "fatigue": "3-10 bpm x (hours of work)^1.5-2.2 from the start: accelerates in long sessions",
    },
    "effort_curve": {
        "linear": "%HR reserve = %VO2 reserve",
        "saturating": "concave: (1 - exp(-k f)) / (1 - exp(-k)), k 0.5-2, flattening toward HRmax",
        "offset_gain": "linear with a per-athlete offset (+-8% of reserve) and gain (0.85-1.15)",
    },
    "cost_law": {
        "acsm": "ACSM running/walking cost (economy SD 0.1), standard bikes",
        "curvilinear": "running cost per metre grows as (speed / 12 km/h)^0.2-0.5",
        "wide_economy": "running economy SD 0.2; bikes 0-15 kg heavier with 0.8-1.5x the drag",
    },
    "sampling_law": {
        "uneven": "jittered intervals, 2% of them 3-8x longer, 0.6 auto-pauses per workout",
        "regular": "one fixed interval per workout; the device always records speed",
        "gappy": "5-15% of intervals 5-20x longer, 2-4 auto-pauses per workout",
        "fitrec_quirks": "2-10% of samples repeat the previous timestamp, 50-90% of records lack speed, "
        "a quarter of athletes' gender unknown",
    },
    "sensor_law": {
        "standard": "strap noise SD 1.5-3 bpm, 7% of workouts with an artefact",
        "noisy": "1.5-2.5x the strap noise, 2-4x the artefacts, 1.5-3x the GPS error",
    },
}
NEUTRAL = {  # the law parameters draw_laws adds, at their values for laws that have no use for them
    "fast_tau_s": np.nan,
    "fast_share": 0.0,
    "drift_exponent": 1.0,
    "effort_curvature": 0.0,
    "effort_offset": 0.0,
    "effort_gain": 1.0,
    "cost_exponent": 0.0,
    "bike_extra_kg": 0.0,
    "drag_factor": 1.0,
    "slow_sample_share": 0.02,
    "repeat_share": 0.0,
    "hr_noise_scale": 1.0,
    "artefact_scale": 1.0,
    "gps_noise_scale": 1.0,
}
LAW_COLUMNS = (*FAMILIES, *NEUTRAL, "pauses_per_workout")  # the last one neutral at SimConfig's


@dataclass(frozen=True)
class SimVariant:
    """One law per family (the keys of FAMILIES), or RANDOM: each athlete draws that family's law."""

    name: str
    description: str
    kinetics_law: str = "first_order"
    drift_law: str = "linear"
    effort_curve: str = "linear"
    cost_law: str = "acsm"
    sampling_law: str = "uneven"
    sensor_law: str = "standard"


VARIANTS = {
    v.name: v
    for v in (
        SimVariant("default", "the original simulator: first-order kinetics, linear drift and effort, ACSM cost"),
        SimVariant("fast_kinetics", "first-order kinetics with tau_on 10-30 s", kinetics_law="fast"),
        SimVariant("slow_kinetics", "first-order kinetics with tau_on 60-150 s", kinetics_law="slow"),
        SimVariant("second_order", "two cascaded first-order stages: an S-shaped rise", kinetics_law="second_order"),
        SimVariant("two_component", "fast vagal plus slow sympathetic kinetics", kinetics_law="two_component"),
        SimVariant("saturating", "concave effort curve flattening toward HRmax", effort_curve="saturating"),
        SimVariant("fatigue", "drift grows faster than the accumulated work", drift_law="fatigue"),
        SimVariant("no_drift", "no cardiac drift", drift_law="none"),
        SimVariant("curvilinear_cost", "running cost per metre grows with speed", cost_law="curvilinear"),
        SimVariant("sparse_sampling", "long sampling gaps and frequent auto-pauses", sampling_law="gappy"),
        SimVariant(
            "fitrec_quirks", "repeated timestamps, more records without speed or gender", sampling_law="fitrec_quirks"
        ),
        SimVariant("noisy_sensors", "noisier straps, more artefacts and GPS error", sensor_law="noisy"),
        SimVariant(RANDOM, "each athlete draws each law independently from its family", *[RANDOM] * len(FAMILIES)),
    )
}


def variant_names() -> tuple[str, ...]:
    return tuple(VARIANTS)


# Families the recipe (inputs, hyper-parameters, budget) may be tuned on; every other one is held out
# from every choice, and is what the recipe's accuracy is reported on (docs/benchmarks.md).
SELECTION_VARIANTS = ("default", "fast_kinetics", "no_drift", "noisy_sensors")
HELD_OUT_VARIANTS = tuple(name for name in VARIANTS if name not in SELECTION_VARIANTS)


def resolve_variant(name: str) -> SimVariant:
    """The variant called `name`; an unknown name is a one-line error that lists the choices."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise HRLSTMError(f"unknown simulator variant {name!r}; choose one of {', '.join(VARIANTS)}") from None


def draw_laws(variant: SimVariant, rng, athletes: pd.DataFrame, cfg: SimConfig) -> pd.DataFrame:
    """A copy of `athletes` with each one's laws (FAMILIES' columns), their parameters (NEUTRAL's
    columns and pauses_per_workout) and the true parameters those laws redraw (time constants,
    drift, economy, device habits, recorded gender)."""
    df, n = athletes.copy(), len(athletes)
    for family in FAMILIES:
        law = getattr(variant, family)
        df[family] = rng.choice(list(FAMILIES[family]), n) if law == RANDOM else law
    df = df.assign(**NEUTRAL, pauses_per_workout=cfg.pauses_per_workout)
    has = lambda family, law: (df[family] == law).to_numpy()  # noqa: E731

    def draw(mask, column, low, high, digits=3):
        df.loc[mask, column] = rng.uniform(low, high, mask.sum()).round(digits)

    def time_constants(mask, low, high):
        draw(mask, "tau_on_s", low, high, 1)
        df.loc[mask, "tau_off_s"] = (df.tau_on_s[mask] * rng.uniform(1.2, 1.8, mask.sum())).round(1)

    time_constants(has("kinetics_law", "fast"), 10.0, 30.0)
    time_constants(has("kinetics_law", "slow"), 60.0, 150.0)
    time_constants(has("kinetics_law", "second_order"), 20.0, 50.0)  # per stage
    symmetric, two = has("kinetics_law", "symmetric"), has("kinetics_law", "two_component")
    df.loc[symmetric, "tau_off_s"] = df.tau_on_s[symmetric]
    time_constants(two, 60.0, 180.0)  # the slow, sympathetic part
    draw(two, "fast_tau_s", 5.0, 20.0, 1)
    draw(two, "fast_share", 0.4, 0.7)

    df.loc[has("drift_law", "none"), "drift_bpm_per_hour"] = 0.0
    fatigue = has("drift_law", "fatigue")
    draw(fatigue, "drift_bpm_per_hour", 3.0, 10.0, 2)
    draw(fatigue, "drift_exponent", 1.5, 2.2)

    draw(has("effort_curve", "saturating"), "effort_curvature", 0.5, 2.0)
    offset_gain = has("effort_curve", "offset_gain")
    draw(offset_gain, "effort_offset", -0.08, 0.08)
    draw(offset_gain, "effort_gain", 0.85, 1.15)

    draw(has("cost_law", "curvilinear"), "cost_exponent", 0.2, 0.5)
    wide = has("cost_law", "wide_economy")
    df.loc[wide, "economy"] = np.clip(rng.normal(1.0, 0.2, wide.sum()), 0.6, 1.5).round(3)
    draw(wide, "bike_extra_kg", 0.0, 15.0, 1)
    draw(wide, "drag_factor", 0.8, 1.5)
    df["gain_bpm_per_mps"] = running_gain_bpm_per_mps(df.hr_rest, df.hr_max, df.vo2max, df.economy).round(2)

    df.loc[has("sampling_law", "regular"), "speed_missing_prob"] = 0.0
    gappy, quirks = has("sampling_law", "gappy"), has("sampling_law", "fitrec_quirks")
    draw(gappy, "pauses_per_workout", 2.0, 4.0, 2)
    draw(gappy, "slow_sample_share", 0.05, 0.15)
    draw(quirks, "repeat_share", 0.02, 0.1)
    draw(quirks, "speed_missing_prob", 0.5, 0.9)
    df.loc[quirks & (rng.random(n) < 0.25), "gender"] = "unknown"

    noisy = has("sensor_law", "noisy")
    draw(noisy, "hr_noise_scale", 1.5, 2.5)
    draw(noisy, "artefact_scale", 2.0, 4.0)
    draw(noisy, "gps_noise_scale", 1.5, 3.0)
    return df
