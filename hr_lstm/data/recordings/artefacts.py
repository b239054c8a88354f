"""What heart-rate sensors record that is not the heart: spikes and a sensor still settling at the start.

Two rules, both removing readings (set to missing, never scored as measured, never read by the warm start),
and both counted in the import's notes:

- **Spikes**: a reading more than SPIKE_BPM from the median of the readings within SPIKE_WINDOW_S around it. A
  heart does not jump 30 BPM and back within a quarter of a minute; a strap with a bad contact, or an optical
  sensor catching an arm swing, does.
- **A sensor still settling**: in the first SETTLE_MIN minutes, readings after the first minute that are below
  SETTLE_FRACTION of the workout's median heart rate after those minutes. With a time constant near a minute
  (docs/physiology.md), a heart starting from rest is past 60% of its working rate within the first minute of
  running; readings far below it later are a dry chest strap or an optical sensor that has not found the pulse.
  The first minute is left alone: there a low reading is the heart at rest.

Removed readings are gaps like any other: up to 30 s they are interpolated, longer ones are dropped with
their samples (`convert`), so a removed opening stretch does not reach the model or the warm start.
Readings outside 25-250 BPM (a strap's 0 when it loses contact, 255 sentinels) are dropped when the file is read
(`samples.samples_frame`) and counted there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPIKE_BPM, SPIKE_WINDOW_S = 30.0, 31.0
SETTLE_MIN, SETTLE_FRACTION = 5.0, 0.6


def heart_rate_artefacts(t: np.ndarray, hr: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """(heart rate with artefacts set to NaN, counts by rule) for samples at times `t` (s, increasing)."""
    hr, counts = np.asarray(hr, float).copy(), {"spikes": 0, "settling": 0}
    ok = np.isfinite(hr)
    if ok.sum() < 3:
        return hr, counts
    series = pd.Series(hr[ok], index=pd.to_timedelta(t[ok], unit="s"))
    median = series.rolling(pd.Timedelta(seconds=SPIKE_WINDOW_S), center=True, min_periods=1).median()
    spike = np.zeros_like(ok)
    spike[ok] = np.abs(series.to_numpy() - median.to_numpy()) > SPIKE_BPM
    hr[spike], counts["spikes"] = np.nan, int(spike.sum())
    later = np.isfinite(hr) & (t >= 60.0 * SETTLE_MIN)
    if later.sum() >= 10:
        floor = SETTLE_FRACTION * np.median(hr[later])
        settling = (t >= 60.0) & (t < 60.0 * SETTLE_MIN) & (hr < floor)
        hr[settling], counts["settling"] = np.nan, int(settling.sum())
    return hr, counts


def artefact_note(counts: dict[str, int], out_of_range: int = 0) -> str | None:
    """One line for the import's notes, or None when nothing was removed."""
    parts = [
        f"{out_of_range} outside 25-250 BPM (dropouts)" if out_of_range else "",
        f"{counts.get('spikes', 0)} spikes" if counts.get("spikes") else "",
        f"{counts.get('settling', 0)} of a sensor still settling (under {SETTLE_FRACTION:.0%} of the workout's "
        f"median after minute 1)"
        if counts.get("settling")
        else "",
    ]
    parts = [p for p in parts if p]
    return f"heart-rate readings removed: {', '.join(parts)}" if parts else None
