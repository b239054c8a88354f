"""An 80% band around every heart-rate prediction: split-conformal residual quantiles by elapsed time.

After training, the model predicts the validation workouts (never the test ones); the 10th and 90th
percentiles of measured minus predicted heart rate, in each stretch of elapsed time, are the band's
offsets. The spread grows along a workout (drift and the day's form add up), so one pair of offsets
for the whole workout would be too wide at the start and too narrow at the end. Where a sport family
has enough validation workouts it gets its own offsets (cycling errors are not running's).

Why this and not quantile heads trained with the pinball loss: it needs no retraining, so every
checkpoint gets a band (generic, personalised, FitRec-trained, any model kind); it is calibrated on
data the weights never fitted, which quantile heads are not (a network's training residuals are
smaller than its errors on new data); and with validation and test workouts drawn alike, coverage
on the test set is the nominal 80% up to sampling error. Its limits: the band is as wide for every
athlete and every workout of a sport at a given minute, and points of one workout are not
independent (a day of poor form shifts a whole workout), so coverage on few workouts varies more
than the point count suggests. A personalised model's band rests on a handful of the athlete's workouts
and is fitted by workout instead, around zero (`fit_intervals_few_workouts`). An athlete the model does not
know gets a band fitted on other athletes it does not know, by athlete (`fit_intervals_strangers`): the
validation athletes predicted with the mean embedding at training, real athletes' recordings with
`hr-lstm calibrate --strangers`. docs/intervals.md has the measured coverage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..data.workouts import sport_family

LEVEL = 0.8
EDGES_MIN = (5.0, 15.0, 30.0, 60.0, 90.0, 120.0)  # bins [0, 5), [5, 15), ..., [120, inf) minutes
MIN_POINTS_PER_BIN = 500  # a thinner bin borrows the last earlier bin's offsets
MIN_WORKOUTS_PER_SPORT = 20  # a sport family with fewer validation workouts uses the offsets of all sports
LEVEL_GRID = 41  # quantiles of a few workouts' level distribution, for fit_intervals_few_workouts
MIN_WITHIN_POINTS_PER_BIN = 100


@dataclass
class IntervalFit:
    level: float
    edges_min: list[float]
    lower_bpm: list[float]  # per bin, added to the prediction (negative)
    upper_bpm: list[float]
    by_sport: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # family -> lower_bpm, upper_bpm
    n_workouts: int = 0
    n_points: int = 0
    fitted_on: str = "validation"
    # A band for strangers (`fit_intervals_strangers`): the athletes' level scale and how many athletes it rests on.
    level_scale_bpm: float | None = None
    n_athletes: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "IntervalFit":
        return cls(**d)


def _bins(time_s: np.ndarray, edges_min) -> np.ndarray:
    return np.searchsorted(np.asarray(edges_min) * 60.0, time_s, side="right")


def _offsets(residual: np.ndarray, time_s: np.ndarray, edges_min, level: float) -> tuple[list, list]:
    """Quantiles per bin; a bin with too few points (late in long workouts, mostly) takes the last earlier bin
    that had enough (errors do not shrink with time), or the pooled ones when none before it had."""
    tails = [(1 - level) / 2, (1 + level) / 2]
    carried = np.quantile(residual, tails)
    bins, lower, upper = _bins(time_s, edges_min), [], []
    for b in range(len(edges_min) + 1):
        inside = residual[bins == b]
        if inside.size >= MIN_POINTS_PER_BIN:
            carried = np.quantile(inside, tails)
        lower.append(round(float(carried[0]), 3)), upper.append(round(float(carried[1]), 3))
    return lower, upper


def fit_intervals(
    pred_bpm, measured_bpm, time_s, sport=None, level: float = LEVEL, fitted_on="validation"
) -> IntervalFit:
    """Offsets per elapsed-time bin (and sport family, where it has enough workouts) from (n, steps) arrays.
    `sport`: one sport name per workout (None: all pooled). Missing measurements (NaN) are left out."""
    pred, measured, t = (np.atleast_2d(np.asarray(a, float)) for a in (pred_bpm, measured_bpm, time_s))
    ok = np.isfinite(measured) & np.isfinite(pred)
    if not ok.any():
        raise ValueError("no measured heart rate to calibrate a band on")
    residual = measured - pred
    lower, upper = _offsets(residual[ok], t[ok], EDGES_MIN, level)
    by_sport = {}
    if sport is not None:
        families = np.array([sport_family(s) for s in np.asarray(sport, dtype=object)])
        for family in np.unique(families):
            rows = families == family
            if rows.sum() >= MIN_WORKOUTS_PER_SPORT:
                keep = ok & rows[:, None]
                lo, hi = _offsets(residual[keep], t[keep], EDGES_MIN, level)
                by_sport[str(family)] = {"lower_bpm": lo, "upper_bpm": hi}
    return IntervalFit(level, list(EDGES_MIN), lower, upper, by_sport, len(pred), int(ok.sum()), fitted_on)


def fit_intervals_few_workouts(
    pred_bpm, measured_bpm, time_s, level: float = LEVEL, fitted_on="few workouts", intercept: bool = True
) -> IntervalFit:
    """A band from a handful of workouts (a personalised model's unseen ones): a workout's level plus its
    within-workout wander, with the level's spread as a prediction interval for one new workout.

    Points of one workout share that day's level, so n workouts hold n draws of it, not thousands: the pooled
    10th / 90th percentiles of 5 workouts' points understate the tails. Residual = level_w + within_{w,t}
    (level_w the workout's mean residual). A new workout's level is predicted as the calibration levels' mean
    with Student's t on n - 1 degrees of freedom, scaled by sqrt(1 + 1/n) (the textbook prediction interval
    for one new draw); the within part keeps its empirical quantiles per elapsed bin (many points, one law).
    The offsets are the quantiles of level + within. With hundreds of workouts this tends to the pooled band
    when levels are near normal. Sports are pooled: a handful of workouts cannot split by sport.

    `intercept=False` when the calibration predictions come from another fit than the model to be banded (a
    personalisation's selection set, predicted by the rung fitted without it): their mean level is that fit's
    bias, not the final model's (which was refitted on those workouts), so a new level is drawn around zero,
    its scale the levels' root mean square, with Student's t on n degrees of freedom (the mean is not
    estimated). That fit's bias then widens the band instead of shifting it: how far off a refit may be."""
    pred, measured, t = (np.atleast_2d(np.asarray(a, float)) for a in (pred_bpm, measured_bpm, time_s))
    residual = measured - pred
    ok = np.isfinite(residual)
    per_workout = ok.any(axis=1)
    if per_workout.sum() < 2:
        raise ValueError("a band from few workouts needs at least 2 with measured heart rate")
    residual, ok, t = residual[per_workout], ok[per_workout], t[per_workout]
    levels = np.array([r[k].mean() for r, k in zip(residual, ok)])
    n = len(levels)
    grid = stats.t.ppf((np.arange(LEVEL_GRID) + 0.5) / LEVEL_GRID, df=n - 1 if intercept else n)
    if intercept:
        level_draws = levels.mean() + levels.std(ddof=1) * np.sqrt(1 + 1 / n) * grid
    else:
        level_draws = np.sqrt(np.mean(levels**2)) * grid
    lower, upper = _level_plus_within(level_draws, residual - levels[:, None], ok, t, level)
    return IntervalFit(level, list(EDGES_MIN), lower, upper, {}, n, int(ok.sum()), fitted_on)


def _level_plus_within(level_draws, within, ok, t, level: float, thin=None) -> tuple[list, list]:
    """Per elapsed bin, the band's offsets: the quantiles of a drawn level plus the within-workout wander there
    (a bin with too few points takes the last earlier bin's wander, or all of it). `thin(x)` stands a long
    wander in by fewer points."""
    within, bins = within[ok], _bins(t[ok], EDGES_MIN)
    tails, carried, lower, upper = [(1 - level) / 2, (1 + level) / 2], within, [], []
    for b in range(len(EDGES_MIN) + 1):
        if (bins == b).sum() >= MIN_WITHIN_POINTS_PER_BIN:
            carried = within[bins == b]
        sample = carried if thin is None else thin(carried)
        q = np.quantile((level_draws[:, None] + sample[None, :]).ravel(), tails)
        lower.append(round(float(q[0]), 3)), upper.append(round(float(q[1]), 3))
    return lower, upper


def fit_intervals_strangers(
    pred_bpm,
    measured_bpm,
    time_s,
    athlete,
    level: float = LEVEL,
    fitted_on="athletes the model does not know",
    prior: IntervalFit | None = None,
    prior_athletes: float = 0.0,
) -> IntervalFit:
    """A band for an athlete the model does not know, from other such athletes' workouts (predicted without their
    own embedding, by weights that never fitted them): residual = athlete level + day level + within-workout.

    A stranger's errors are mostly their own level (fitness, resting and maximum heart rate, the sensor), shared
    by all their workouts: the athletes given are as many draws of it as there are athletes, not workouts. The
    athlete level is drawn around zero (the calibration athletes' mean bias is not a new athlete's) with their
    levels' root mean square as its scale and Student's t on n_athletes degrees of freedom, so two or three real
    athletes give a wide band and hundreds tend to their spread; the day level (a workout's mean residual less
    its athlete's) and the within-workout wander keep their empirical distributions, the wander per elapsed bin.
    `athlete`: one id per workout row. With `prior` (another band for strangers, e.g. the validation athletes')
    its level scale counts as `prior_athletes` more athletes: the scale is the pooled root mean square and the
    degrees of freedom n_athletes + prior_athletes (then one athlete is enough)."""
    pred, measured, t = (np.atleast_2d(np.asarray(a, float)) for a in (pred_bpm, measured_bpm, time_s))
    residual = measured - pred
    ok = np.isfinite(residual)
    rows = ok.any(axis=1)
    athlete = np.asarray(athlete, dtype=object)[rows]
    residual, ok, t = residual[rows], ok[rows], t[rows]
    ids = sorted(set(athlete))
    prior_n = prior_athletes if prior is not None and prior.level_scale_bpm is not None else 0.0
    if len(ids) + prior_n < 2:
        raise ValueError("a band for strangers needs workouts of at least 2 athletes")
    levels = np.array([r[k].mean() for r, k in zip(residual, ok)])
    athlete_level = {a: levels[athlete == a].mean() for a in ids}
    day = levels - np.array([athlete_level[a] for a in athlete])
    squares = np.sum(np.square(list(athlete_level.values())))
    squares += prior_n * (prior.level_scale_bpm**2 if prior_n else 0.0)
    scale, df = np.sqrt(squares / (len(ids) + prior_n)), len(ids) + prior_n
    grid = stats.t.ppf((np.arange(LEVEL_GRID) + 0.5) / LEVEL_GRID, df=df)
    # Each distribution stands in by evenly spaced quantiles (not a random subsample, whose luck moved a
    # stranger's coverage by several points): the same workouts, in any order, give the same band.
    spaced = lambda x, k: np.quantile(x, (np.arange(k) + 0.5) / k)  # noqa: E731
    level_draws = (scale * grid[:, None] + spaced(day, 101)[None, :]).ravel()
    thin = lambda x: spaced(x, 201)  # noqa: E731
    lower, upper = _level_plus_within(level_draws, residual - levels[:, None], ok, t, level, thin)
    return IntervalFit(
        level, list(EDGES_MIN), lower, upper, {}, int(rows.sum()), int(ok.sum()), fitted_on, float(scale), len(ids)
    )


def band_offsets(time_s, fit: IntervalFit, sport=None) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) offsets in BPM shaped like `time_s`, for `sport` (a name, one per row, or None)."""
    t = np.asarray(time_s, float)
    bins = _bins(t, fit.edges_min)
    pooled = (np.asarray(fit.lower_bpm), np.asarray(fit.upper_bpm))

    def table(name):
        own = fit.by_sport.get(sport_family(name)) if name is not None else None
        return (np.asarray(own["lower_bpm"]), np.asarray(own["upper_bpm"])) if own else pooled

    if sport is None or isinstance(sport, str) or t.ndim == 1:
        lo, hi = table(sport if sport is None or isinstance(sport, str) else np.asarray(sport).ravel()[0])
        return lo[bins], hi[bins]
    lower, upper = np.empty_like(t), np.empty_like(t)
    for i, name in enumerate(np.asarray(sport, dtype=object)):
        lo, hi = table(name)
        lower[i], upper[i] = lo[bins[i]], hi[bins[i]]
    return lower, upper


def band_bpm(pred_bpm, time_s, fit: IntervalFit, sport=None) -> tuple[np.ndarray, np.ndarray]:
    lower, upper = band_offsets(time_s, fit, sport)
    pred = np.asarray(pred_bpm, float)
    return pred + lower, pred + upper


def coverage(measured_bpm, low_bpm, high_bpm, mask=None) -> float:
    """Share of the measured points (finite, and in `mask`) inside [low, high]."""
    measured = np.asarray(measured_bpm, float)
    ok = np.isfinite(measured) if mask is None else np.isfinite(measured) & np.asarray(mask, bool)
    if not ok.any():
        return float("nan")
    inside = (measured >= np.asarray(low_bpm)) & (measured <= np.asarray(high_bpm))
    return float(inside[ok].mean())


def coverage_interval(measured_bpm, low_bpm, high_bpm, confidence: float = 0.9, seed: int = 0) -> tuple[float, float]:
    """A bootstrap interval of the pooled coverage of (n, steps) workouts, resampling whole workouts.

    Points of one workout share its day's level, so 10 workouts are closer to 10 draws than to thousands:
    on 10 workouts a pooled 73% is consistent with a band that covers 80%. (nan, nan) with fewer than 2."""
    measured = np.atleast_2d(np.asarray(measured_bpm, float))
    ok = np.isfinite(measured)
    inside = ((measured >= np.asarray(low_bpm)) & (measured <= np.asarray(high_bpm)) & ok).sum(axis=1)
    points = ok.sum(axis=1)
    keep = points > 0
    if keep.sum() < 2:
        return float("nan"), float("nan")
    result = stats.bootstrap(
        (inside[keep], points[keep]),
        lambda i, p, axis=-1: i.sum(axis=axis) / p.sum(axis=axis),
        paired=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),  # scipy >= 1.15
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def coverage_table(measured_bpm, low_bpm, high_bpm, sport) -> pd.DataFrame:
    """Coverage per sport family (one sport name per workout row) and for all: sport, workouts, points, coverage."""
    measured = np.atleast_2d(np.asarray(measured_bpm, float))
    families = np.array([sport_family(s) for s in np.asarray(sport, dtype=object)])
    rows = []
    for name in [*sorted(set(families)), "all"]:
        pick = np.ones(len(families), bool) if name == "all" else families == name
        mask = np.broadcast_to(pick[:, None], measured.shape)
        rows.append(
            {
                "sport": name,
                "workouts": int(pick.sum()),
                "points": int((np.isfinite(measured) & mask).sum()),
                "coverage": coverage(measured, low_bpm, high_bpm, mask),
            }
        )
    return pd.DataFrame(rows)
