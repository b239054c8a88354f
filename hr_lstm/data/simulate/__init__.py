"""Simulated FitRec/Endomondo workouts: the project's default, download-free data.

Each athlete has true physiology (resting and maximum heart rate, VO2max, on/off time constants,
cardiac drift, running economy). Each workout follows a session plan (warm-up, steady / intervals
/ hill / recovery / long, cool-down) over a random terrain with stops; the workload (ACSM running
and walking VO2, cycling power) sets a demand heart rate that the heart follows with first-order
kinetics; then sensors record it with noise, GPS error, auto-pause gaps and chest-strap artefacts.
Output: one Python dict literal per line, gzipped, like the public file, plus sidecars holding
the noise-free heart rate and the athletes' true parameters (and, for a variant, their laws).
Those are today's laws; a variant (SimConfig.variant) swaps some of them for others of the same
family, so that recipes can be chosen on some simulators and judged on held-out ones.

Modules: `config` (SimConfig), `physiology` (workload -> demand heart rate -> kinetics),
`sessions` (athletes, session plans, one workout's true signals), `sensors` (noise, artefacts,
the FitRec record), `variants` (the families of laws, each athlete's draw), `laws` (the laws
at work), `truth` (the sidecars) and `driver` (`simulate`, which writes it all).
Facts used: docs/physiology.md, "1. Kinetics", "4. Workload: ACSM equations and cycling power",
"5. Cardiac drift", "6. Artefacts in real recordings" and "7. Simulator families (domain
randomisation)"; docs/fitrec-format.md, "3. Record layout" and "4. Sampling and data quality".
"""

from .config import SimConfig
from .driver import SimSummary, simulate
from .physiology import acsm_vo2, cycling_power_w, cycling_speed_ms, cycling_vo2, demand_bpm, hr_kinetics
from .sensors import ARTEFACT_KINDS
from .sessions import SPORTS
from .truth import SimTruth, load_truth, sidecar_paths
from .variants import FAMILIES, VARIANTS, SimVariant, resolve_variant, variant_names

__all__ = [
    "ARTEFACT_KINDS",
    "FAMILIES",
    "SPORTS",
    "VARIANTS",
    "SimConfig",
    "SimSummary",
    "SimTruth",
    "SimVariant",
    "acsm_vo2",
    "cycling_power_w",
    "cycling_speed_ms",
    "cycling_vo2",
    "demand_bpm",
    "hr_kinetics",
    "load_truth",
    "resolve_variant",
    "sidecar_paths",
    "simulate",
    "variant_names",
]
