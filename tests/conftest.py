"""Shared test helpers: tiny hand-made FitRec records and a small simulated data set."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_WORKOUTS = SHARED / "real_workouts"


def make_record(
    workout_id=1, user_id=7, n=500, with_speed=True, sport="run", gender="male", start=1_400_000_000, seed=0
):
    """A plausible FitRec record: a runner heading north at ~10 km/h, sampled every ~6 s."""
    rng = np.random.default_rng(seed)
    dt = rng.integers(4, 9, size=n)
    dt[0] = 0
    t = start + np.cumsum(dt)
    speed_kmh = 10 + 2 * np.sin(np.arange(n) / 40)
    lat = 48.0 + np.cumsum(speed_kmh / 3.6 * dt) / 111_195.0  # metres north -> degrees
    record = {
        "altitude": list(np.round(200 + 20 * np.sin(np.arange(n) / 60), 1)),
        "gender": gender,
        "heart_rate": list(np.round(120 + 3 * speed_kmh).astype(int).tolist()),
        "id": workout_id,
        "latitude": list(np.round(lat, 7)),
        "longitude": [11.0] * n,
        "speed": list(np.round(speed_kmh, 3)),
        "sport": sport,
        "timestamp": [int(x) for x in t],
        "url": f"https://www.endomondo.com/users/{user_id}/workouts/{workout_id}",
        "userId": user_id,
    }
    if not with_speed:
        del record["speed"]
    return {k: ([float(x) for x in v] if isinstance(v, list) and k != "timestamp" else v) for k, v in record.items()}


def write_fitrec(path: Path, records, style="python", gz=None) -> Path:
    """Write records as Python-literal lines (FitRec's style), JSON lines, or one JSON array."""
    if style == "python":
        text = "".join(str(r) + "\n" for r in records)
    elif style == "jsonl":
        text = "".join(json.dumps(r) + "\n" for r in records)
    else:
        text = json.dumps(list(records))
    gz = str(path).endswith(".gz") if gz is None else gz
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


@pytest.fixture(scope="session")
def sim_data(tmp_path_factory) -> Path:
    """A small simulated data set (12 athletes) shared by the training tests."""
    from hr_lstm.data.simulate import SimConfig, simulate

    path = tmp_path_factory.mktemp("sim") / "sim.json.gz"
    simulate(SimConfig(n_users=12, seed=3, min_workouts=12, max_workouts=16), path)
    return path
