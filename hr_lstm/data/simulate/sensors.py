"""What the devices record of a simulated workout, and the record they write. `record_workout`
adds the chest strap's noise and artefacts (cadence lock, dry-strap dropouts with spikes, broken
recordings of impossible heart rates; docs/physiology.md, "6. Artefacts in real recordings"),
correlated GPS and barometer errors and speed noise, each as strong as the athlete's sensor law
says, and the timestamps their sampling law writes; then it lays the result out as one FitRec
(Endomondo) record: docs/fitrec-format.md, "3. Record layout" and "4. Sampling and data quality".
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from .config import SimConfig
from .laws import device_timestamps

EARTH_RADIUS_M = 6_371_008.8
ARTEFACT_KINDS = ("none", "cadence_lock", "dropout_spikes", "broken")


def _ar_noise(rng, sd, rho, n):
    """Correlated (AR(1)) noise with stationary SD `sd`: GPS and barometer errors drift slowly."""
    xi = rng.normal(0, sd, n)
    xi[0] /= np.sqrt(1 - rho**2)
    return lfilter([np.sqrt(1 - rho**2)], [1.0, -rho], xi)


def record_workout(rng, a: dict, w: dict, s: dict, hr_clean, cfg: SimConfig) -> tuple[dict, int]:
    """The FitRec record of athlete `a`'s workout `w` with true signals `s` and noise-free heart rate
    `hr_clean`, and its artefact kind (an index into ARTEFACT_KINDS)."""
    n = cfg.seq_len
    hr = hr_clean + rng.normal(0, rng.uniform(*cfg.hr_noise_bpm) * a["hr_noise_scale"], n)
    u, kind = rng.random(), 0
    if u < cfg.broken_fraction:
        kind, bad = 3, rng.random(n) < rng.uniform(0.3, 0.8)
        hr[bad] = rng.uniform(232, 255, bad.sum()) if rng.random() < 0.5 else rng.uniform(0, 28, bad.sum())
    elif u < cfg.broken_fraction + cfg.artefact_fraction * a["artefact_scale"]:
        length = min(int(rng.integers(20, 120)), n // 2)
        at = int(rng.integers(0, n - length))
        if w["sport"] == "run":  # the strap locks onto running cadence
            kind = 1
            cadence = rng.uniform(160, 180) + np.cumsum(rng.normal(0, 0.3, length))
            hr[at : at + length] = cadence + rng.normal(0, 1.5, length)
        else:  # dry strap reads low, plus a few spikes
            kind, spikes = 2, rng.integers(0, n, rng.integers(1, 6))
            hr[at : at + length] = hr[at] * rng.uniform(0.4, 0.7) + rng.normal(0, 2, length)
            hr[spikes] += rng.uniform(30, 80, spikes.size)
    rho = np.exp(-max(s["m"][-1] / n, 1.0) / 60.0)  # errors decorrelate over about a minute
    gps_sd = rng.uniform(*cfg.gps_noise_m) * a["gps_noise_scale"]
    north, east = s["y"] + _ar_noise(rng, gps_sd, rho, n), s["x"] + _ar_noise(rng, gps_sd, rho, n)
    lat = w["lat0"] + np.degrees(north / EARTH_RADIUS_M)
    lon = w["lon0"] + np.degrees(east / (EARTH_RADIUS_M * np.cos(np.radians(w["lat0"]))))
    altitude = s["altitude"] + rng.normal(0, 10) + _ar_noise(rng, cfg.altitude_noise_m, rho, n)
    speed = np.maximum(s["speed_ms"] * 3.6 * (1 + rng.normal(0, 0.02, n)) + rng.normal(0, 0.05, n), 0.0)
    timestamp = (w["start"] + s["m"] + np.cumsum(s["pause"])).astype(np.int64)
    record = {
        "altitude": np.round(altitude, 1).tolist(),
        "gender": a["gender"],
        "heart_rate": np.clip(np.rint(hr), 0, 255).astype(np.int64).tolist(),
        "id": w["id"],
        "latitude": np.round(lat, 6).tolist(),
        "longitude": np.round(lon, 6).tolist(),
        "speed": np.round(speed, 4).tolist(),
        "sport": w["sport"],
        "timestamp": device_timestamps(rng, a, timestamp).tolist(),
        "url": f"https://www.endomondo.com/users/{a['userId']}/workouts/{w['id']}",
        "userId": int(a["userId"]),
    }
    if w["no_speed"]:
        del record["speed"]
    return record, kind
