"""The simulator's physiology: workload to oxygen cost (ACSM running and walking VO2, cycling
power, speed and VO2; docs/physiology.md, "4. Workload: ACSM equations and cycling power"),
oxygen cost to a demand heart rate (`demand_bpm`), and the heart's first-order lag behind that
demand (`hr_kinetics`, the law of hr_lstm.kinetics with auto-pauses; docs/physiology.md,
"1. Kinetics"). Pure functions of numpy arrays; no randomness.
"""

from __future__ import annotations

import numpy as np

from ...kinetics import first_order_hr

REFERENCE_RUN_M_PER_MIN = 200.0  # 12 km/h: where a curvilinear running cost meets the ACSM line


def running_integral(x, step):
    """Integral of x over a regular grid of spacing `step` up to each point (left rectangles)."""
    return np.concatenate(([0.0], np.cumsum(x[:-1]) * step))


def running_gain_bpm_per_mps(hr_rest, hr_max, vo2max, economy):
    """Heart rate per m/s of flat running under the linear effort curve and the ACSM cost."""
    return (hr_max - hr_rest) / (vo2max - 3.5) * 12 * economy


def acsm_vo2(speed_ms, grade, walking=False, economy=1.0, cost_exponent=0.0):
    """ACSM running/walking VO2 (mL/kg/min); downhill grade counts 40%, never below 60% of flat cost.

    cost_exponent > 0 makes the flat cost per metre grow with speed, as (v / 12 km/h)^cost_exponent
    (the curvilinear cost law of variants.py); 0 is the ACSM line."""
    v, g = np.asarray(speed_ms, float) * 60.0, np.asarray(grade, float)
    horizontal, vertical = (0.1, 1.8) if walking else (0.2, 0.9)
    flat = horizontal * v
    if cost_exponent:
        flat = flat * (v / REFERENCE_RUN_M_PER_MIN) ** cost_exponent
    return 3.5 + economy * np.maximum(flat + vertical * v * np.where(g > 0, g, 0.4 * g), 0.6 * flat)


def cycling_power_w(speed_ms, grade, mass_kg, crr=0.005, cda_m2=0.45):
    """Power (W) to hold a speed: rolling + climbing + air drag (rho 1.2)."""
    v = np.asarray(speed_ms, float)
    return 9.81 * mass_kg * (crr + np.asarray(grade, float)) * v + 0.6 * cda_m2 * v**3


def cycling_speed_ms(power_w, grade, mass_kg, crr=0.005, cda_m2=0.45):
    """Inverse of cycling_power_w: Newton from an upper bound (the cubic is convex there)."""
    k, a = 0.6 * cda_m2, 9.81 * mass_kg * (crr + np.asarray(grade, float))
    p = np.maximum(np.asarray(power_w, float), 0.0)
    v = np.cbrt(p / k) + np.sqrt(np.maximum(-a, 0.0) / k)
    for _ in range(5):
        v = v - (k * v**3 + a * v - p) / (3 * k * v**2 + a + 1e-9)
    return np.maximum(v, 0.0)


def cycling_vo2(power_w, mass_kg):
    """ACSM leg cycling: VO2 = 10.8 W / kg + 7 (mL/kg/min)."""
    return 10.8 * np.maximum(power_w, 0.0) / mass_kg + 7.0


def demand_bpm(vo2, vo2max, hr_rest, hr_max):
    """Steady-state heart rate for a VO2: %HR reserve = %VO2 reserve."""
    return hr_rest + (hr_max - hr_rest) * np.clip((np.asarray(vo2) - 3.5) / (vo2max - 3.5), 0.0, 1.0)


def hr_kinetics(demand_bpm, dt_s, hr0_bpm, tau_on_s, tau_off_s, pause_s=None, rest_bpm=None):
    """Heart rate at each sample, first order toward the demand: hr_lstm.kinetics.first_order_hr.

    demand_bpm[..., k] is the mean demand over the interval ending at sample k and dt_s[..., k]
    its length (index 0 unused); tau_on while rising, tau_off while falling. pause_s[..., k]
    seconds of auto-pause precede interval k, during which HR relaxes toward rest_bpm with tau_off.
    Accepts one workout (1-D) or a batch (rows, returned C-ordered); the taus and hr0 are scalars
    or one per row.
    """
    hr, _ = first_order_hr(demand_bpm, dt_s, hr0_bpm, tau_on_s, tau_off_s, pause_s=pause_s, rest_bpm=rest_bpm)
    return np.ascontiguousarray(hr)
