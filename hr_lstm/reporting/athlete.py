"""One real athlete, honestly: fit on the earlier 80% of their workouts, score on the latest 20%.

Every row predicts the same latest workouts and is scored by pooled MAE, on all minutes and on the
minutes after k = 2 and 5 without a warm start, with the plain one (the gap over the second half of
the first k minutes, carried whole) and with the calibrated one (how much of that gap carries over and
for how long, `fit_warm_start`): the athlete's own mean heart rate over the earlier 80% (a constant),
the per-athlete physiological baseline, the generic model (mean embedding), each personalisation rung
and the automatic choice, and a small LSTM trained on that athlete alone. A personalised row uses the
calibration its checkpoint stored (fitted on workouts it predicted without fitting them, as `hr-lstm
predict` does); the others are calibrated on their predictions of the earlier 80%. Nothing from the
latest 20% fits anything. The models' rows also give the share of the latest workouts' measured points inside
their 80% band (the personalised ones calibrated on the athlete's own unseen workouts), with a 90% bootstrap
interval over the latest workouts. `benchmarks/real_athletes.py` prints the table; notebook 05 shows it.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..console import say
from ..data.features import target
from ..data.recordings import collect_workout_files, import_recordings, write_records
from ..data.workouts import sport_family
from ..errors import DataError
from ..inference.finetune import PersonalizeConfig
from ..inference.personalize import drop_duplicates, personalize, usable_for_fitting
from ..inference.predict import warm_start_calibration
from ..inference.workout_files import Workouts, read_workout_files
from ..models.baselines import BaselineConfig, FittedBaselines, fit_physiological_user
from ..models.intervals import band_bpm, coverage, coverage_interval
from ..models.warm_start import after_minutes_mae, fit_warm_start, persistence_bpm, warm_start_bpm
from ..training.config import RunConfig
from ..training.run import run
from ..training.trained import TrainedModel

OWN_MEAN = "own mean heart rate (earlier 80%)"
GENERIC = "generic model (mean embedding)"
WARM_MINUTES = (2.0, 5.0)
TEST_FRACTION = 0.2


def athlete_files(folder: Path) -> list[Path]:
    """One athlete's recordings: a folder's FIT / GPX / TCX / CSV files, or a bulk export's."""
    files = collect_workout_files([Path(folder).expanduser()]).files
    if not files:
        raise DataError(f"{folder}: no FIT / GPX / TCX / CSV files")
    return files


def split_by_date(data: Workouts) -> tuple[Workouts, Workouts]:
    """Earlier 80% and latest 20% (at least one) of the workouts by start time."""
    order = np.argsort(data.workouts.meta["start_time"].to_numpy(), kind="stable")
    n_test = max(1, round(TEST_FRACTION * len(order)))
    parts = order[:-n_test], order[-n_test:]
    return tuple(
        Workouts(data.workouts.subset(idx), [data.names[i] for i in idx], data.has_heart_rate[idx]) for idx in parts
    )


def physiological(earlier: Workouts, everything: Workouts, user: str) -> np.ndarray:
    """The per-athlete first-order kinetics baseline, fitted on the earlier workouts only; predicts all.

    A workout of a sport family the earlier ones never had gets the athlete's mean heart rate: there is no
    gain to turn its speed into heart rate, and borrowing another sport's (a km/h costs far more running than
    riding) predicted over 220 BPM for a simulated athlete's first ride after runs."""
    cfg = BaselineConfig(baselines=("physiological",))
    hr_bpm = target(earlier.workouts).astype(np.float64)
    params = fit_physiological_user(earlier.workouts, hr_bpm, cfg)
    fitted = FittedBaselines(cfg, 0.0, {}, None, pd.DataFrame({user: params}).T, {})
    pred = fitted.predict(everything.workouts)["physiological"]
    families = lambda ws: np.array([sport_family(s) for s in ws.meta["sport"]])  # noqa: E731
    pred[~np.isin(families(everything.workouts), families(earlier.workouts))] = np.nanmean(hr_bpm)
    return pred


def athlete_alone(files: list[Path], earlier: Workouts, sport: str | None, epochs: int, out_dir: Path) -> TrainedModel:
    """A small LSTM trained on this athlete's earlier workouts only (its own split cuts validation from them)."""
    earlier_ids = set(earlier.workouts.meta["id"].astype(str))
    imported = import_recordings(files, "athlete", sport=sport)
    records = [r for r in imported.records if str(r["id"]) in earlier_ids]
    data = write_records(records, out_dir / "athlete.json")
    changes = {
        "data.path": str(data),
        "filters.min_workouts_per_user": 1,
        "filters.sports": ("run", "bike", "walk", "other"),
        "model.model": "lstm",
        "model.hidden_size": 32,
        "model.num_layers": 1,
        "train.epochs": epochs,
        "train.patience": epochs,
        "train.device": "cpu",
        "train.out_dir": str(out_dir / "alone"),
        "split.train_fraction": 0.8,
        "split.val_fraction": 0.1,
    }
    result = run(RunConfig().override(changes).validate(), log=lambda *a: None)
    return TrainedModel.load(result.checkpoint_path)


def curves(workouts: Workouts) -> tuple[np.ndarray, np.ndarray]:
    return target(workouts.workouts).astype(np.float64), workouts.workouts.channel("time_s").astype(np.float64)


def scores(name: str, pred_all: np.ndarray, earlier: Workouts, latest: Workouts, fits: dict | None = None) -> dict:
    """MAE on the latest workouts; after minute k without a warm start, with the plain one, and with a
    calibrated one: `fits[k]` (a personalised checkpoint's) or else fitted (`fit_warm_start`) on the same
    method's predictions of the earlier workouts."""
    (true, t), (true_before, t_before) = curves(latest), curves(earlier)
    pred, pred_before = pred_all[len(earlier) :], pred_all[: len(earlier)]
    row = {"row": name, "MAE": after_minutes_mae(pred, true, t, 0)}
    for k in WARM_MINUTES:
        fit = fits[k] if fits is not None else fit_warm_start(pred_before, true_before, t_before, k)
        row[f"after {k:g} min"] = after_minutes_mae(pred, true, t, k)
        row[f"after {k:g}, warm start"] = after_minutes_mae(warm_start_bpm(pred, true, t, k), true, t, k)
        row[f"after {k:g}, calibrated"] = after_minutes_mae(warm_start_bpm(pred, true, t, k, fit), true, t, k)
    return row


@dataclass
class AthleteResult:
    """The table, and what the notebook draws: the latest workouts and each row's predictions of them."""

    # One row per method: MAE, after k min (without / with warm start), x own mean, band coverage and its interval
    table: pd.DataFrame
    earlier: Workouts
    latest: Workouts
    predictions: dict[str, np.ndarray]  # row name -> (n_latest, steps) BPM
    bands: dict[str, tuple[np.ndarray, np.ndarray]]  # row name -> its 80% band (low, high) on the latest workouts
    chosen_rung: str | None  # what "auto" chose, when it ran
    seconds: dict[str, float] = field(default_factory=dict)  # row name -> seconds to personalise (or train)
    # The generic model's predictions of all the athlete's workouts (earlier and latest) and what was measured:
    # (pred, measured, time_s), for a band for strangers fitted on this athlete and tested on another.
    generic_all: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def stranger_coverage(self, fit) -> float:
        """Share of the latest workouts' measured points inside the generic model's band `fit`."""
        true, t = curves(self.latest)
        pred = self.predictions[GENERIC]
        return coverage(true, *band_bpm(pred, t, fit)) if fit is not None else float("nan")

    def best_personalised(self) -> str:
        """The personalised row with the lowest MAE on the latest workouts."""
        return min(
            (n for n in self.predictions if n.startswith("personalised")), key=lambda n: self.table.loc[n, "MAE"]
        )


def athlete_table(
    files,
    checkpoint: Path,
    sport: str | None = None,
    rungs=("embedding", "head", "full", "blend", "auto"),
    athlete_epochs: int = 40,
    log=say,
    seed: int = 0,
    max_workouts: int = PersonalizeConfig.max_train_workouts,
) -> AthleteResult:
    """Every row of the module docstring for one athlete's files (one person's recordings)."""
    files = [Path(f) for f in files]
    base = TrainedModel.load(checkpoint)
    data = read_workout_files(
        files, base.config.parse, "athlete", "unknown", require_heart_rate=True, report=None, sport=sport
    )
    data = usable_for_fitting(data, base.config.filters)
    if len(data) < 5:
        raise DataError(f"{files[0].parent}: only {len(data)} usable workouts with heart rate; need at least 5")
    order = np.argsort(data.workouts.meta["start_time"].to_numpy(), kind="stable")
    data = Workouts(data.workouts.subset(order), [data.names[i] for i in order], data.has_heart_rate[order])
    deduplicated = drop_duplicates(data)  # a repeat must not be fitted on and scored
    repeats = len(data) - len(deduplicated)
    data = deduplicated
    earlier, latest = split_by_date(data)
    # Inputs are built over all the athlete's workouts: features such as the days since their first workout
    # and their previous workout's summary look back at the earlier ones.
    rows = np.arange(len(earlier), len(data))
    sports = ", ".join(sorted(set(data.workouts.meta["sport"])))
    log(
        f"{len(files)} files, {len(data)} usable ({sports}{f'; {repeats} repeats left out' if repeats else ''}); personalising on the earlier {len(earlier)}, "
        f"predicting the latest {len(latest)}"
    )
    # Every method predicts all the athlete's workouts: the latest are scored, the earlier calibrate the warm start.
    predictions = {
        OWN_MEAN: np.full(data.workouts.series.shape[:2], float(target(earlier.workouts).mean())),
        "physiological baseline (per athlete)": physiological(earlier, data, "athlete"),
        GENERIC: base.predict_bpm(data.workouts, users=base.users(["nobody"] * len(data))),
    }
    chosen, calibrations, bands, seconds = None, {}, {GENERIC: base.interval}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for rung in rungs:
            started = time.perf_counter()
            result = personalize(
                checkpoint,
                earlier,
                Path(tmp) / f"{rung}.pt",
                user="athlete",
                config=PersonalizeConfig(rung=rung, seed=seed, max_train_workouts=max_workouts),
                report=lambda *a: None,
            )
            personal = TrainedModel.load(result.checkpoint)
            label = f"personalised: {rung}" + (f" (chose {result.rung})" if rung == "auto" else "")
            chosen = result.rung if rung == "auto" else chosen
            predictions[label] = personal.predict_bpm(data.workouts, users=personal.users(["athlete"] * len(data)))
            calibrations[label] = {k: warm_start_calibration(personal, k) for k in WARM_MINUTES}
            bands[label] = personal.interval
            seconds[label] = time.perf_counter() - started
            log(f"  {label}: {seconds[label]:.0f} s")
        if athlete_epochs:
            alone = athlete_alone(files, earlier, sport, athlete_epochs, Path(tmp))
            predictions["small LSTM on this athlete alone"] = alone.predict_bpm(data.workouts)
            bands["small LSTM on this athlete alone"] = alone.interval
    table = pd.DataFrame(
        [scores(name, pred, earlier, latest, calibrations.get(name)) for name, pred in predictions.items()]
    ).set_index("row")
    table["x own mean"] = table["MAE"] / table.loc[OWN_MEAN, "MAE"]
    latest_predictions = {name: pred[rows] for name, pred in predictions.items()}
    true, t = curves(latest)
    sports = latest.workouts.meta["sport"].to_numpy()
    latest_bands = {
        name: band_bpm(latest_predictions[name], t, fit, sports) for name, fit in bands.items() if fit is not None
    }
    table["80% band coverage"] = [
        coverage(true, *latest_bands[name]) if name in latest_bands else np.nan for name in table.index
    ]
    # On 5-10 latest workouts coverage is itself uncertain (a workout's points share its day's level).
    ranges = [coverage_interval(true, *latest_bands[n]) if n in latest_bands else (np.nan,) * 2 for n in table.index]
    table["coverage 90% CI low"], table["coverage 90% CI high"] = zip(*ranges)
    generic_all = (predictions[GENERIC], *curves(data))
    return AthleteResult(table, earlier, latest, latest_predictions, latest_bands, chosen, seconds, generic_all)


def summary_row(athlete: str, result: AthleteResult, k: float = 5.0) -> dict:
    """One athlete in one line: the automatic personalisation against the own mean (all minutes; after minute
    k without and with its calibrated warm start, against the own mean after k), the persistence baseline (the
    measured last minute before k, held), band coverage personalised and generic, and the time it took."""
    table, auto = result.table, next(n for n in result.table.index if n.startswith("personalised: auto"))
    true, t = curves(result.latest)
    own_after = table.loc[OWN_MEAN, f"after {k:g} min"]
    persistence = after_minutes_mae(persistence_bpm(true, t, k), true, t, k)
    return {
        "athlete": athlete,
        "fit / test": f"{len(result.earlier)} / {len(result.latest)}",
        "rung": result.chosen_rung,
        "MAE": table.loc[auto, "MAE"],
        "own mean": table.loc[OWN_MEAN, "MAE"],
        "x own mean": table.loc[auto, "x own mean"],
        f"after {k:g}: no warm start x": table.loc[auto, f"after {k:g} min"] / own_after,
        f"after {k:g}: warm start x": table.loc[auto, f"after {k:g}, calibrated"] / own_after,
        f"after {k:g}: persistence x": persistence / own_after,
        "band personal": table.loc[auto, "80% band coverage"],
        "band generic": table.loc[GENERIC, "80% band coverage"],
        "generic MAE": table.loc[GENERIC, "MAE"],
        "seconds": result.seconds.get(auto, np.nan),
    }


def summary_table(rows: list[dict]) -> pd.DataFrame:
    """The athletes' rows and two more: the mean and the worst of each ratio (worst: highest, for a band the
    farthest from 80%)."""
    table = pd.DataFrame(rows).set_index("athlete")
    ratios = [c for c in table.columns if c.endswith("x") or c == "x own mean"]
    bands = [c for c in table.columns if c.startswith("band")]
    mean = {c: table[c].mean() for c in [*ratios, *bands, "MAE", "own mean", "generic MAE", "seconds"]}
    worst = {c: table[c].max() for c in ratios}
    worst.update({c: table[c].iloc[int(np.argmax(np.abs(table[c].to_numpy() - 0.8)))] for c in bands})
    return pd.concat([table, pd.DataFrame([mean, worst], index=["mean", "worst"])])
