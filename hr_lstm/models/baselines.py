"""The baselines a sports scientist tries first; an LSTM must beat them to be worth it.

- `global_mean`: the training split's mean heart rate, everywhere.
- `user_mean`: each athlete's training mean (athletes not in the training split: global mean).
- `linear`: ridge regression on exponentially smoothed speed and climbing rate (several time
  constants: the heart lags the effort), time elapsed (cardiac drift), sport family and gender.
- `physiological`: per athlete, heart rate relaxes toward a demand linear in speed and climbing
  rate, first order with separate on/off time constants (`hr_lstm.kinetics`, the law the
  simulator generates with; docs/physiology.md, "1. Kinetics"), fitted with
  scipy's bounded least squares; athletes not in the training split get one fit to a sample of all
  training workouts (cold_start="pooled", the default; "median" takes each parameter's median,
  which combines trade-off parameters such as base and gain badly).

Every parameter is fitted on the training split of `prepare(cfg)`, the same split, filters and
metrics as the LSTMs; the test split is only predicted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..data.features import GENDER_CODE, grade, step_change
from ..data.workouts import SPORT_FAMILIES, WorkoutSet, sport_family
from ..errors import HRLSTMError
from ..kinetics import first_order_hr as kinetics  # (hr, Jacobian) of the first-order law
from ..metrics import compute_metrics

BASELINES = ("global_mean", "user_mean", "linear", "physiological")
NOISE_FLOOR = "noise_floor"
FIXED = ["base_bpm", "hr0_bpm", "drift_bpm_per_h", "climb_bpm_per_ms", "tau_on_s", "tau_off_s"]
GAINS = [f"gain_{f}_bpm_per_kmh" for f in SPORT_FAMILIES]  # demand per km/h differs by sport
CHUNK = 2048  # workouts per block when building features: bounded memory on FitRec-sized sets
BOUNDS = {
    "base_bpm": (30, 200),
    "hr0_bpm": (30, 210),
    "drift_bpm_per_h": (-30, 60),
    "climb_bpm_per_ms": (-100, 600),
    "gain": (0, 30),
}  # wide physiological ranges; the taus' come from the config


@dataclass
class BaselineConfig:
    smoothing_s: tuple[float, ...] = (30.0, 60.0, 120.0, 300.0)  # linear model's time constants
    ridge_alpha: float = 1.0
    train_stride: int = 10  # the linear model fits on every n-th training step: neighbours are near copies
    tau_bounds_s: tuple[float, float] = (10.0, 300.0)
    max_nfev: int = 40  # least-squares evaluations per athlete
    max_fit_workouts: int = 60  # an athlete's most recent training workouts fitted (bounds the time)
    loss: str = "soft_l1"  # robust: chest-strap artefacts should not pull the fit
    f_scale_bpm: float = 8.0
    # Athletes not in the training split: "median" (each parameter's median across athletes) or
    # "pooled" (one fit to a sample of all training workouts: a consistent population athlete,
    # where medians of traded-off parameters, e.g. base vs gain, need not be).
    cold_start: str = "pooled"  # one fit to all athletes; per-parameter medians mix trade-offs badly
    pooled_workouts: int = 300
    baselines: tuple[str, ...] = BASELINES

    def __post_init__(self):
        self.smoothing_s, self.baselines = tuple(self.smoothing_s), tuple(self.baselines)
        unknown = sorted(set(self.baselines) - set(BASELINES))
        if unknown:
            raise HRLSTMError(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
        if self.cold_start not in ("median", "pooled"):
            raise HRLSTMError(f"cold start {self.cold_start!r}: choose median or pooled")


def climb_rate_ms(ws: WorkoutSet) -> np.ndarray:
    """Vertical speed (m/s) from the clipped grade, so barometer noise on a slow step stays bounded."""
    return grade(ws) * ws.channel("speed_kmh") / 3.6


def _blocks(n: int) -> list[np.ndarray]:
    return [np.arange(a, min(a + CHUNK, n)) for a in range(0, n, CHUNK)]


def _time_steps(ws: WorkoutSet) -> np.ndarray:
    return np.clip(step_change(ws.channel("time_s")), 0.0, None)


def _sport_one_hot(ws: WorkoutSet) -> np.ndarray:
    family = ws.meta["sport"].map(sport_family).to_numpy()
    return (family[:, None] == np.array(SPORT_FAMILIES)[None, :]).astype(np.float32)


def smooth(x: np.ndarray, dt_s: np.ndarray, tau_s: float) -> np.ndarray:
    """Exponential smoothing over uneven steps (alpha = 1 - exp(-dt/tau)), from 0: the body starts at rest."""
    alpha = 1.0 - np.exp(-dt_s / tau_s)
    out, s = np.empty_like(x), np.zeros(len(x), x.dtype)
    for k in range(x.shape[1]):
        s = s + alpha[:, k] * (x[:, k] - s)
        out[:, k] = s
    return out


def linear_features(ws: WorkoutSet, cfg: BaselineConfig) -> np.ndarray:
    """(n, seq_len, n_features): smoothed speed per sport family (a km/h costs more running than
    riding), smoothed climbing rate, minutes elapsed, sport one-hot, gender."""
    dt, speed, climb = _time_steps(ws), np.nan_to_num(ws.channel("speed_kmh")), np.nan_to_num(climb_rate_ms(ws))
    sport = _sport_one_hot(ws)[:, None, :]
    gender = ws.meta["gender"].map(GENDER_CODE).fillna(0.5).to_numpy(np.float32)[:, None, None]
    cols = []
    for tau in cfg.smoothing_s:
        cols += [smooth(speed, dt, tau)[..., None] * sport, smooth(climb, dt, tau)[..., None]]
    cols.append(ws.channel("time_s")[..., None] / 60.0)
    cols += [np.broadcast_to(x, (*speed.shape, x.shape[-1])) for x in (sport, gender)]
    return np.concatenate(cols, axis=-1).astype(np.float32)


def _physio_inputs(ws: WorkoutSet):
    """Demand = design @ [FIXED..., GAINS...]: linear in base, drift, climb and sport gains (hr0, taus: 0)."""
    sport = _sport_one_hot(ws)
    speed = np.nan_to_num(ws.channel("speed_kmh")).astype(np.float64)
    climb = np.nan_to_num(climb_rate_ms(ws)).astype(np.float64)
    hours, zero = ws.channel("time_s").astype(np.float64) / 3600.0, np.zeros_like(climb)
    fixed = np.stack([np.ones_like(climb), zero, hours, climb, zero, zero], -1)
    return np.concatenate([fixed, speed[..., None] * sport[:, None, :]], -1), _time_steps(ws).astype(np.float64), sport


def fit_physiological_user(ws: WorkoutSet, hr_bpm: np.ndarray, cfg: BaselineConfig) -> pd.Series:
    """One athlete's parameters from their training workouts (gains of sports they never did: NaN)."""
    design, dt, sport = _physio_inputs(ws)
    used = list(np.flatnonzero(sport.any(axis=0)))  # gains only for sports this athlete trained in
    cols = list(range(len(FIXED))) + [len(FIXED) + i for i in used]
    design = design[:, :, cols]
    # Start from a static regression of heart rate on the demand's terms (after the first 5 min).
    settled = (ws.channel("time_s") > 300).ravel()
    settled |= not settled.any()  # only short workouts: use every step
    lin = [0, 2, 3] + list(range(len(FIXED), len(cols)))
    coef = np.linalg.lstsq(design.reshape(-1, len(cols))[settled][:, lin], hr_bpm.ravel()[settled], rcond=None)[0]
    names = FIXED + [GAINS[i] for i in used]
    lo, hi = np.array([cfg.tau_bounds_s if "tau" in c else BOUNDS.get(c, BOUNDS["gain"]) for c in names], float).T
    x0 = np.zeros(len(cols))
    x0[lin] = coef
    x0[1], x0[4], x0[5] = np.median(hr_bpm[:, 0]), 40.0, 80.0
    x0 = np.clip(x0, lo + 1e-6, hi - 1e-6)
    cache = {}

    def run(x):  # residuals and Jacobian come from one pass; least_squares asks for both at each x
        key = x.tobytes()
        if key not in cache:
            cache.clear()
            hr, jac = kinetics(design @ x, dt, np.full(len(ws), x[1]), x[4], x[5], design)
            cache[key] = ((hr - hr_bpm).ravel(), jac.reshape(-1, len(cols)))
        return cache[key]

    fit = least_squares(
        lambda x: run(x)[0],
        x0,
        jac=lambda x: run(x)[1],
        bounds=(lo, hi),
        loss=cfg.loss,
        f_scale=cfg.f_scale_bpm,
        max_nfev=cfg.max_nfev,
        x_scale="jac",
    )
    return pd.Series(dict(zip(names, fit.x)), index=FIXED + GAINS, dtype=float)


@dataclass
class FittedBaselines:
    """Parameters of every baseline, fitted on the training split; `predict` works on any workouts."""

    cfg: BaselineConfig
    global_mean_bpm: float
    user_mean_bpm: dict
    linear: object | None  # sklearn pipeline
    physio_params: pd.DataFrame | None  # one row per training athlete, columns FIXED + GAINS
    fit_seconds: dict
    physio_pooled: pd.Series | None = None  # with cold_start="pooled"

    def cold_start_params(self) -> pd.Series:
        """The median (or pooled) athlete; a sport nobody trained in gets the median gain of all sports."""
        cold = self.physio_params.median() if self.physio_pooled is None else self.physio_pooled
        return cold.fillna(float(np.nanmedian(self.physio_params[GAINS].to_numpy())))

    def physio_rows(self, user_ids) -> pd.DataFrame:
        """Parameters per workout's athlete; the cold-start athlete fills unknown athletes wholly and
        known ones' gains for sports they never trained in."""
        return self.physio_params.reindex(pd.Index(user_ids, dtype=object)).fillna(self.cold_start_params())

    def predict(self, ws: WorkoutSet) -> dict[str, np.ndarray]:
        """Heart rate in BPM (n, seq_len) per baseline, for every workout of `ws` (e.g. to plot them)."""
        if len(ws) > CHUNK:
            parts = [self.predict(ws.subset(rows)) for rows in _blocks(len(ws))]
            return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        shape, out = ws.series.shape[:2], {}
        if "global_mean" in self.cfg.baselines:
            out["global_mean"] = np.full(shape, self.global_mean_bpm, np.float32)
        if "user_mean" in self.cfg.baselines:
            means = ws.meta["user_id"].map(self.user_mean_bpm).fillna(self.global_mean_bpm).to_numpy(np.float32)
            out["user_mean"] = np.repeat(means[:, None], shape[1], axis=1)
        if self.linear is not None:
            x = linear_features(ws, self.cfg)
            out["linear"] = self.linear.predict(x.reshape(-1, x.shape[-1])).reshape(shape).astype(np.float32)
        if self.physio_params is not None:
            p = self.physio_rows(ws.meta["user_id"].to_numpy())
            design, dt, _ = _physio_inputs(ws)
            theta = np.concatenate([p[FIXED].to_numpy(), p[GAINS].to_numpy()], axis=1)
            demand = np.einsum("ntp,np->nt", design, theta)
            hr, _ = kinetics(demand, dt, p["hr0_bpm"].to_numpy(), p["tau_on_s"].to_numpy(), p["tau_off_s"].to_numpy())
            out["physiological"] = hr.astype(np.float32)
        return out


def fit(prepared, cfg: BaselineConfig | None = None, log=None) -> FittedBaselines:
    """Fit every baseline on the training split only. `log` (e.g. `say`), when given, gets a progress
    line every 10 athletes of the physiological fit (the slow one)."""
    cfg = cfg or BaselineConfig()
    train = prepared.workouts.subset(prepared.split.train)
    hr = prepared.target_bpm.numpy()[prepared.split.train].astype(np.float64)
    seconds = {}
    started = time.perf_counter()
    user_mean = pd.Series(hr.mean(axis=1), index=train.meta["user_id"].to_numpy()).groupby(level=0).mean()
    seconds["global_mean"] = seconds["user_mean"] = time.perf_counter() - started

    linear = None
    if "linear" in cfg.baselines:
        started = time.perf_counter()
        x = np.concatenate(
            [linear_features(train.subset(rows), cfg)[:, :: cfg.train_stride] for rows in _blocks(len(train))]
        )
        linear = make_pipeline(StandardScaler(), Ridge(alpha=cfg.ridge_alpha))
        linear.fit(x.reshape(-1, x.shape[-1]), hr[:, :: cfg.train_stride].ravel())
        seconds["linear"] = time.perf_counter() - started

    params = pooled = None
    if "physiological" in cfg.baselines:
        started = time.perf_counter()
        rows = {}
        users = train.meta["user_id"].to_numpy()
        # One BLAS thread: the least-squares matrices are small, and threads fighting over shared
        # cores made each SVD 20x slower.
        with threadpool_limits(limits=1, user_api="blas"):
            unique_users = pd.unique(users)
            for n_done, user in enumerate(unique_users, 1):
                idx = np.flatnonzero(users == user)
                idx = idx[np.argsort(train.meta["start_time"].to_numpy()[idx], kind="stable")][-cfg.max_fit_workouts :]
                rows[user] = fit_physiological_user(train.subset(idx), hr[idx], cfg)
                if log is not None and (n_done % 10 == 0 or n_done == len(unique_users)):
                    log(
                        f"  physiological: {n_done}/{len(unique_users)} athletes fitted "
                        f"({time.perf_counter() - started:.1f} s)"
                    )
            if cfg.cold_start == "pooled":
                if log is not None:
                    log(
                        f"  physiological: pooled fit for cold-start athletes ({min(len(train), cfg.pooled_workouts)} workouts)"
                    )
                rng = np.random.default_rng(0)
                sample = np.sort(rng.permutation(len(train))[: cfg.pooled_workouts])
                pooled = fit_physiological_user(train.subset(sample), hr[sample], cfg)
        params = pd.DataFrame.from_dict(rows, orient="index")
        seconds["physiological"] = time.perf_counter() - started
    return FittedBaselines(cfg, float(hr.mean()), user_mean.to_dict(), linear, params, seconds, pooled)


def fit_baselines(prepared, cfg: BaselineConfig | None = None) -> dict[str, np.ndarray]:
    """Test-split predictions (n_test, seq_len) of each baseline, fitted on the training split."""
    return fit(prepared, cfg).predict(prepared.workouts.subset(prepared.split.test))


def baseline_table(prepared, cfg: BaselineConfig | None = None, fitted: FittedBaselines | None = None) -> pd.DataFrame:
    """Test metrics per baseline (and the simulator's noise floor when known), as the LSTMs report them."""
    fitted = fitted or fit(prepared, cfg)
    test = prepared.split.test
    true = prepared.target_bpm.numpy()[test]
    preds = fitted.predict(prepared.workouts.subset(test))
    rows = {}
    for name, pred in preds.items():
        m = compute_metrics(pred, true)
        rows[name] = [m.mae, m.rmse, m.r2, m.median_workout_mae, fitted.fit_seconds[name]]
    if prepared.clean_bpm is not None:  # what a perfect model would score against noisy recordings
        m = compute_metrics(prepared.clean_bpm[test], true)
        rows[NOISE_FLOOR] = [m.mae, m.rmse, m.r2, m.median_workout_mae, float("nan")]
    return pd.DataFrame.from_dict(rows, orient="index", columns=["MAE", "RMSE", "R²", "median workout MAE", "fit s"])
