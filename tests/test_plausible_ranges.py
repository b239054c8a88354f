"""Numbers out of range: a device's "no value" sentinel or a glitch in altitude is treated as missing with
a count, and cannot wreck the normalisation statistics; a sentinel speed is missing to the reader."""

import numpy as np
from conftest import make_record, write_fitrec

from hr_lstm.data.cache import load_workouts
from hr_lstm.data.features import FeatureConfig, fit_normalizer
from hr_lstm.data.filters import FilterConfig, apply_filters

SENTINEL = 4294967295.0  # an unsigned 32-bit "no value"


def _load(folder, records):
    folder.mkdir(exist_ok=True)
    return load_workouts(write_fitrec(folder / "d.json", records), cache=False, log=lambda *a: None)


def test_sentinels_and_overflows_become_missing_and_leave_the_statistics_alone(tmp_path):
    clean = [make_record(workout_id=i, user_id=1, seed=i) for i in range(4)]
    broken = [make_record(workout_id=i, user_id=1, seed=i) for i in range(4)]
    broken[0]["altitude"][10] = 1e300  # overflows float32 to infinity
    broken[0]["altitude"][20] = SENTINEL
    broken[2]["altitude"] = [SENTINEL] * 500  # the whole channel: absent, not interpolated
    broken[1]["speed"][30] = SENTINEL  # the reader's job: the GPS speed there instead
    cfg = FilterConfig(min_workouts_per_user=1)
    kept_clean, _ = apply_filters(_load(tmp_path / "a", clean), cfg)
    kept, report = apply_filters(_load(tmp_path / "b", broken), cfg)

    assert report.out_of_range == {"altitude": 502}
    assert "Out of range, treated as missing: 502 altitude points." in report.summary()
    altitude = kept.channel("altitude_m")
    assert np.isnan(altitude[2]).all() and np.isfinite(altitude[[0, 1, 3]]).all()
    assert altitude[0, 10] == np.float32((broken[0]["altitude"][9] + broken[0]["altitude"][11]) / 2)
    speed = kept.channel("speed_kmh")
    assert speed.max() < 20 and speed[1, 30] == kept.channel("derived_speed_kmh")[1, 30]

    features = FeatureConfig(inputs=("speed", "altitude"))
    with_glitches, without = fit_normalizer(kept, features), fit_normalizer(kept_clean, features)
    assert np.isfinite(with_glitches.mean).all() and np.isfinite(with_glitches.std).all()
    assert np.allclose(with_glitches.std, without.std, rtol=0.05)  # not 1.5e7, as one sentinel made it


def test_data_in_range_is_left_exactly_as_it_was(tmp_path):
    records = [make_record(workout_id=i, user_id=1, seed=i) for i in range(3)]
    ws = _load(tmp_path, records)
    before = ws.series.copy()
    kept, report = apply_filters(ws, FilterConfig(min_workouts_per_user=1))
    assert report.out_of_range == {"altitude": 0} and "Out of range" not in report.summary()
    assert np.array_equal(kept.series, before)
