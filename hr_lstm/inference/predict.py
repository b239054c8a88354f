"""Heart rate predicted for new workouts by a saved model: a CSV and a PNG per workout, MAE where measured.

    hr-lstm predict --checkpoint checkpoints/lstm_embeddings_best.pt run.fit ride.gpx --out predictions/

Files are read by `workout_files` (recordings, folders, bulk exports, FitRec-format files). Inputs are
built with the checkpoint's own feature settings and normalisation statistics. A file that cannot be used
is skipped with one line saying why; the rest of the batch is still predicted.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..console import say
from ..data.features import with_history
from ..data.workouts import WorkoutSet
from ..errors import HRLSTMError
from ..models.intervals import band_bpm
from ..models.lstm import UNKNOWN_USER
from ..models.warm_start import MIN_FIT_WORKOUTS, WarmStartFit, after_minutes_mae, warm_start_bpm
from ..paths import write_bytes_atomic, write_text_atomic
from ..training.trained import TrainedModel
from .workout_files import Workouts, read_workout_files

CSV_COLUMNS = (
    "time_s",
    "timestamp",
    "speed_kmh",
    "altitude_m",
    "heart_rate_bpm",
    "predicted_heart_rate_bpm",
    "predicted_low_bpm",  # the calibrated 80% band (models/intervals.py); empty for a checkpoint without one
    "predicted_high_bpm",
)


def prediction_frame(data: Workouts, i: int, predicted_bpm: np.ndarray, band=None) -> pd.DataFrame:
    """Workout i as CSV_COLUMNS; heart_rate_bpm empty where the file measured none, the band where `band`
    (low, high) is None."""
    ws = data.workouts
    t = ws.channel("time_s")[i].astype(float)
    start = int(ws.meta["start_time"].iloc[i])
    hr = ws.channel("heart_rate_bpm")[i].astype(float) if data.has_heart_rate[i] else np.full(len(t), np.nan)
    return pd.DataFrame(
        {
            "time_s": np.round(t, 1),
            "timestamp": pd.to_datetime(start + np.round(t), unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "speed_kmh": np.round(ws.channel("speed_kmh")[i].astype(float), 3),
            "altitude_m": np.round(ws.channel("altitude_m")[i].astype(float), 2),
            "heart_rate_bpm": np.round(hr, 1),
            "predicted_heart_rate_bpm": np.round(predicted_bpm.astype(float), 1),
            "predicted_low_bpm": np.round(band[0], 1) if band is not None else np.nan,
            "predicted_high_bpm": np.round(band[1], 1) if band is not None else np.nan,
        },
        columns=list(CSV_COLUMNS),
    )


def frame_mae(frame: pd.DataFrame) -> float | None:
    error = (frame["predicted_heart_rate_bpm"] - frame["heart_rate_bpm"]).abs()
    return float(error.mean()) if error.notna().any() else None


def prediction_figure(frame: pd.DataFrame, title: str = ""):
    """Measured and predicted heart rate over time; speed (and altitude) below."""
    fig, (ax_hr, ax_speed) = plt.subplots(
        2, 1, figsize=(10, 5.5), sharex=True, height_ratios=(2, 1), constrained_layout=True
    )
    minutes = frame["time_s"] / 60
    if frame.get("predicted_low_bpm") is not None and frame["predicted_low_bpm"].notna().any():
        ax_hr.fill_between(
            minutes,
            frame["predicted_low_bpm"],
            frame["predicted_high_bpm"],
            color="tab:red",
            alpha=0.15,
            lw=0,
            label="80% band",
        )
    if frame["heart_rate_bpm"].notna().any():
        ax_hr.plot(minutes, frame["heart_rate_bpm"], color="black", lw=1, label="measured")
    ax_hr.plot(minutes, frame["predicted_heart_rate_bpm"], color="tab:red", lw=1.5, label="predicted")
    if "warm_start_heart_rate_bpm" in frame:
        ax_hr.plot(
            minutes,
            frame["warm_start_heart_rate_bpm"],
            color="tab:purple",
            lw=1.2,
            ls="--",
            label="predicted with warm start",
        )
    ax_hr.set(ylabel="heart rate (BPM)", title=title)
    ax_hr.legend(loc="best", framealpha=0.8)
    ax_speed.plot(minutes, frame["speed_kmh"], color="tab:blue", lw=1)
    ax_speed.set(xlabel="time (min)", ylabel="speed (km/h)")
    ax_alt = ax_speed.twinx()
    ax_alt.plot(minutes, frame["altitude_m"], color="tab:green", lw=1, alpha=0.6)
    ax_alt.set_ylabel("altitude (m)", color="tab:green")
    return fig


@dataclass
class WorkoutPrediction:
    name: str
    user: str  # whose embedding: 'user ID', 'mean embedding, unknown user' or 'no embedding'
    frame: pd.DataFrame  # CSV_COLUMNS
    mae: float | None  # None: no measured heart rate
    warm_start_min: float | None = None  # k: the first k measured minutes corrected the rest
    mae_after_k: float | None = None  # MAE after minute k without the warm start ...
    warm_start_mae_after_k: float | None = None  # ... and with it, on the same steps
    csv_path: Path | None = None
    png_path: Path | None = None


def warm_start_calibration(model: TrainedModel, minutes: float, stranger: bool = False) -> WarmStartFit | None:
    """The warm-start calibration for k minutes: for an athlete the model does not know (`stranger`), the one
    fitted at training on validation athletes predicted with the mean embedding (a stranger's gap is mostly
    their own level, which lasts); a personalised checkpoint's own for its athlete; a generic checkpoint's for
    the athletes it knows, fitted on its validation split (the gap is then the day's form, which fades). The
    last two only where fitted on at least MIN_FIT_WORKOUTS; else None (the plain warm start: the whole gap, for good).

    One stored before the gap was read over the second half of the window (no `persistence_s`) was fitted
    to another estimate: it is not used."""
    if model.personalisation and not stranger:  # its own, which already borrows from the population's
        stored = (model.personalisation.get("warm_start") or {}).get(f"{minutes:g}")
        return WarmStartFit(**stored) if stored and "persistence_s" in stored else None
    fit = model.warm_start_unknown(minutes) if stranger else model.warm_start_prior(minutes)
    return fit if fit is not None and fit.n_workouts >= MIN_FIT_WORKOUTS else None


def stored_history(model: TrainedModel) -> pd.DataFrame | None:
    """The personalised athlete's workouts a checkpoint stored (`workout_summaries` rows); None without."""
    history = model.personalisation.get("history")
    return pd.DataFrame(history).assign(user_id=str(model.personalisation["user"])) if history else None


def workouts_in_context(model: TrainedModel, data: Workouts, column: list[str]) -> WorkoutSet:
    """`data`'s workouts as the model reads them: each as the athlete `column` names (whose embedding it
    gets), the history-dependent inputs (previous workout, days since the first) computed among the given
    workouts and, for a personalised athlete, the workouts the checkpoint stored. A file without measured
    heart rate tells the next one nothing about it."""
    history, ws = stored_history(model), data.workouts
    if history is not None:
        ws = WorkoutSet(ws.series, ws.meta.assign(user_id=column), ws.source, ws.fingerprint)
    return with_history(ws, history, measured=data.has_heart_rate)


def predict_workouts(
    model: TrainedModel,
    data: Workouts,
    user: str | None = None,
    mean_embedding: bool = False,
    warm_start_min: float | None = None,
) -> list[WorkoutPrediction]:
    """Predictions for every workout with `user`'s embedding (or the mean one); by default each workout's own
    user when the checkpoint knows it, else the personalised athlete of a personalised checkpoint, else the mean.

    With `warm_start_min` k, workouts with measured heart rate also get the warm-started curve (column
    `warm_start_heart_rate_bpm`: measured before minute k, corrected prediction after) and both MAEs after k."""
    if user is not None:
        model.check_user(user)
    if not len(data):
        return []
    known, personal = set(model.user_ids), model.personalisation.get("user")
    column = [
        user if user is not None else str(u) if str(u) in known or not personal else personal
        for u in data.workouts.meta["user_id"]
    ]
    users = model.users(column) * (not mean_embedding)  # index 0: the unknown user's mean embedding
    known_band, unknown_band = model.interval, model.interval_unknown
    predicted = model.predict_bpm(workouts_in_context(model, data, column), users)
    out = []
    for i, name in enumerate(data.names):
        stranger = model.has_embedding and users[i] == UNKNOWN_USER
        who = (
            "no embedding"
            if not model.has_embedding
            else f"user {column[i]}"
            if not stranger
            else "mean embedding, unknown user"
        )
        interval = unknown_band if stranger and unknown_band is not None else known_band
        if stranger and unknown_band is not None:
            who += "; band for an athlete the model does not know"
        t = data.workouts.channel("time_s")[i].astype(float)
        band = band_bpm(predicted[i], t, interval, data.workouts.meta["sport"].iloc[i]) if interval else None
        frame = prediction_frame(data, i, predicted[i], band)
        pred = WorkoutPrediction(name, who, frame, frame_mae(frame))
        if warm_start_min is not None and data.has_heart_rate[i]:
            t, measured = frame["time_s"].to_numpy(float), frame["heart_rate_bpm"].to_numpy(float)
            calibration = warm_start_calibration(model, warm_start_min, stranger)
            warm = warm_start_bpm(predicted[i], measured, t, warm_start_min, calibration)
            frame["warm_start_heart_rate_bpm"] = np.round(warm, 1)
            if band is not None:  # the band moves with the warm-start correction (its width is the model's)
                for edge in ("predicted_low_bpm", "predicted_high_bpm"):
                    frame[edge] = np.round(frame[edge] + (warm - predicted[i]), 1)
            pred.warm_start_min = warm_start_min
            pred.mae_after_k = after_minutes_mae(predicted[i], measured, t, warm_start_min)
            pred.warm_start_mae_after_k = after_minutes_mae(warm, measured, t, warm_start_min)
        out.append(pred)
    return out


PNG_CHOICES = ("auto", "all", "none")
PNG_AUTO_MAX = 20  # `--png auto`: a figure per workout up to this many; a season's batch gets CSVs only (said)


def write_prediction(pred: WorkoutPrediction, out_dir: Path, png: bool = True) -> WorkoutPrediction:
    """`{name}_prediction.csv` (and `.png`, a figure costs 0.3 s) in `out_dir`, each atomically: never a 0-byte
    or half file."""
    pred.csv_path = out_dir / f"{pred.name}_prediction.csv"
    write_text_atomic(pred.csv_path, pred.frame.to_csv(index=False))
    if not png:
        return pred
    mae = f"MAE {pred.mae:.1f} BPM" if pred.mae is not None else "no measured heart rate"
    fig = prediction_figure(pred.frame, f"{pred.name}: {mae}")
    pred.png_path = out_dir / f"{pred.name}_prediction.png"
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=100, format="png")
    finally:
        plt.close(fig)
    write_bytes_atomic(pred.png_path, buffer.getbuffer())
    return pred


def curves_table(predictions: dict[str, list[WorkoutPrediction]], workouts: list[str] | None = None) -> pd.DataFrame:
    """Long table for plotting: workout, minute, curve ('measured' first, then the dict's labels), heart_rate_bpm."""
    parts, measured = [], {}
    for label, preds in predictions.items():
        for pred in (p for p in preds if workouts is None or p.name in workouts):
            f = pred.frame
            if pred.name not in measured and f["heart_rate_bpm"].notna().any():
                measured[pred.name] = pd.DataFrame(
                    {
                        "workout": pred.name,
                        "minute": f["time_s"] / 60,
                        "curve": "measured",
                        "heart_rate_bpm": f["heart_rate_bpm"],
                    }
                )
            parts.append(
                pd.DataFrame(
                    {
                        "workout": pred.name,
                        "minute": f["time_s"] / 60,
                        "curve": label,
                        "heart_rate_bpm": f["predicted_heart_rate_bpm"],
                    }
                )
            )
    parts = [*measured.values(), *parts]
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["workout", "minute", "curve", "heart_rate_bpm"])
    )


def predict_files(
    checkpoint,
    files,
    out_dir="predictions",
    user: str | None = None,
    gender: str | None = None,
    device: str = "cpu",
    write: bool = True,
    report=say,
    sport: str | None = None,
    warm_start_min: float | None = None,
    png: str = "auto",
) -> tuple[list[WorkoutPrediction], Workouts]:
    """Read the files, predict every workout, write `{name}_prediction.csv/.png` (when `write`), report MAE.

    `png`: "all" a figure per workout, "none" CSVs only, "auto" figures for up to PNG_AUTO_MAX workouts (a batch
    of a season's files spends 80% of its time drawing figures nobody asked for; said when left out)."""
    if png not in PNG_CHOICES:
        raise HRLSTMError(f"--png {png}: choose one of {', '.join(PNG_CHOICES)}")
    model = TrainedModel.load(checkpoint, device)
    personal = model.personalisation
    if user is not None and not model.has_embedding:
        report(f"note     {Path(checkpoint).name} is an {model.config.model.model} model: --user has no effect")
        user = None
    if user is not None:
        model.check_user(user)  # before reading any file
    recordings_user = user or personal.get("user") or "unknown"
    data = read_workout_files(
        files,
        model.config.parse,
        recordings_user,
        gender or personal.get("gender") or "unknown",
        report=report,
        sport=sport,
    )
    preds = predict_workouts(model, data, user, warm_start_min=warm_start_min)
    figures = png == "all" or (png == "auto" and len(preds) <= PNG_AUTO_MAX)
    if write and png == "auto" and not figures:
        report(f"note     {len(preds)} workouts: CSVs only, no PNG per workout (more than {PNG_AUTO_MAX}; --png all)")
    total = len(preds)
    for n, pred in enumerate(preds, 1):
        if write:
            write_prediction(pred, Path(out_dir), png=figures)
        mae = f"MAE {pred.mae:5.1f} BPM" if pred.mae is not None else "no measured heart rate"
        where = f" -> {pred.csv_path.name}" + (f", {pred.png_path.name}" if pred.png_path else "") if write else ""
        where += f" [{n}/{total}]" if total > PNG_AUTO_MAX else ""  # progress through a season
        who = f" ({pred.user})" if model.has_embedding else ""
        warm = (
            f"; after minute {pred.warm_start_min:g}: {pred.mae_after_k:.1f} -> {pred.warm_start_mae_after_k:.1f} BPM "
            "with the warm start"
            if pred.warm_start_mae_after_k is not None
            else ""
        )
        report(f"predicted {pred.name}: {mae}{who}{warm}{where}")
    return preds, data
