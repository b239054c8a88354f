"""Small computations behind the notebooks: tables of workouts, errors and embeddings.

The notebooks stay thin: they set parameters, call `hr_lstm.train.run`, pass
what it returns through these functions and hand the tables to `hr_lstm.plots`.
Every function returns plain numpy arrays, pandas tables or dicts; nothing here
draws or prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from ..data.simulate.variants import HELD_OUT_VARIANTS, RANDOM
from ..errors import HRLSTMError
from ..metrics import compute_metrics, per_workout_mae
from ..models.baselines import BaselineConfig, fit_baselines
from ..models.checkpoint import plain
from ..paths import DEFAULT_SIM_USERS, REPORTS_DIR, write_text_atomic
from ..training.config import DEFAULT_STEPS, RunConfig
from ..training.loop import History
from ..training.prepare import PreparedData, test_athletes, test_truth  # noqa: F401  (notebooks use them)
from ..training.run import run
from ..training.trained import TrainedModel
from .exploration import workout_table

MODEL_LABELS = {"lstm": "LSTM", "lstm_embeddings": "LSTM + user embedding"}
MEAN_BASELINE = "mean heart rate (training split)"
BASELINE_LABELS = {
    "global_mean": MEAN_BASELINE,
    "user_mean": "per-user mean heart rate",
    "linear": "linear (smoothed speed, climb, time)",
    "physiological": "physiological (per-athlete kinetics)",
}
ALL_BASELINES = tuple(BASELINE_LABELS)
TRIVIAL_BASELINES = ("global_mean", "user_mean")
NOISE_FLOOR = "noise floor (noise-free heart rate)"
# Papermill passes YAML values; each notebook parameter is cast to its setting's type.
NOTEBOOK_TYPES = {
    "data.sim_users": int,
    "data.sim_variant": str,
    "model.model": str,
    "model.hidden_size": int,
    "model.num_layers": int,
    "model.dropout": float,
    "model.embedding_dim": int,
    "model.user_conditioning": str,
    "train.steps": int,
    "train.epochs": int,
    "train.batch_size": int,
    "train.lr": float,
    "train.patience": int,
    "train.device": str,
    "train.seed": int,
    "split.seed": int,
    "train.amp": str,
}


# ---- parameters and recorded metrics ----------------------------------------------------------


def output_folder(output_dir: str | Path | None) -> Path:
    """Where a notebook writes its metrics (and training notebooks their checkpoints): default reports/."""
    folder = Path(output_dir).expanduser() if output_dir else REPORTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_config(
    model: str = "lstm_embeddings",
    data_path: str | None = None,
    sim_users: int = DEFAULT_SIM_USERS,
    sim_variant: str = "default",
    device: str = "auto",
    steps: int = DEFAULT_STEPS,
    epochs: int = 0,
    batch_size: int = 32,
    hidden_size: int = 64,
    num_layers: int = 2,
    dropout: float = 0.2,
    embedding_dim: int = 16,
    lr: float = 5e-3,
    patience: int = 10,
    seed: int = 0,
    output_dir: str | Path | None = None,
    features: str = "default",
    amp: str = "off",
    user_conditioning: str = "concat",
) -> RunConfig:
    """A `RunConfig` from the notebooks' flat parameters; checkpoints go to `{output_dir}/checkpoints`.
    `features` is comma-separated names or a named set ("original", "default", "all"); the loss and learning-rate
    schedule are the default recipe's."""
    settings = {
        "data.path": data_path,
        "data.sim_users": sim_users,
        "data.sim_variant": sim_variant,
        "model.model": model,
        "model.hidden_size": hidden_size,
        "model.num_layers": num_layers,
        "model.dropout": dropout,
        "model.embedding_dim": embedding_dim,
        "model.user_conditioning": user_conditioning,
        "train.steps": steps,
        "train.epochs": epochs,
        "train.batch_size": batch_size,
        "train.lr": lr,
        "train.patience": patience,
        "train.device": device,
        "train.seed": seed,
        "split.seed": seed,
        "train.amp": amp,
    }
    changes = {key: NOTEBOOK_TYPES[key](value) for key, value in settings.items() if key != "data.path"}
    changes["data.path"] = data_path
    changes["features.inputs"] = tuple(f.strip() for f in str(features).split(",") if f.strip())
    changes["train.out_dir"] = str(output_folder(output_dir) / "checkpoints")
    labels = {key: f"{key.split('.')[1]} =" for key in settings} | {
        "data.sim_users": "sim_users =",
        "data.sim_variant": "sim_variant =",
    }
    return RunConfig().override(changes).validate(labels)


def record_metrics(notebook: str, output_dir: str | Path | None, metrics: dict) -> Path:
    """Write `{output_dir}/{notebook}.metrics.json`: what later notebooks and the tests read."""
    path = output_folder(output_dir) / f"{notebook}.metrics.json"
    write_text_atomic(path, json.dumps(plain({"notebook": notebook, **metrics}), indent=1, allow_nan=False))
    return path


def read_metrics(metrics_dir: str | Path | None, notebook: str) -> dict:
    path = output_folder(metrics_dir) / f"{notebook}.metrics.json"
    if not path.is_file():
        raise HRLSTMError(f"{path}: no recorded metrics; run notebooks/{notebook}.ipynb first (hr-lstm report does)")
    return json.loads(path.read_text())


# ---- predictions and errors -------------------------------------------------------------------


def test_time_min(prepared: PreparedData) -> np.ndarray:
    return prepared.workouts.channel("time_s")[prepared.split.test] / 60.0


def reference_predictions(prepared: PreparedData, which: tuple[str, ...] = ALL_BASELINES) -> dict[str, np.ndarray]:
    """Test predictions of the baselines in `hr_lstm.baselines` (fitted on the training split) and,
    on simulated data, the noise-free heart rate: the floor no model can beat on average."""
    fitted = fit_baselines(prepared, BaselineConfig(baselines=tuple(which)))
    refs = {BASELINE_LABELS.get(name, name): pred for name, pred in fitted.items()}
    if prepared.clean_bpm is not None:
        refs[NOISE_FLOOR] = prepared.clean_bpm[prepared.split.test]
    return refs


def metrics_of(predictions: dict[str, np.ndarray], true_bpm: np.ndarray) -> dict[str, dict]:
    """Test MAE, RMSE, R² and median per-workout MAE of each named prediction."""
    out = {}
    for name, pred in predictions.items():
        m = compute_metrics(pred, true_bpm).as_dict("test_")
        m.pop("test_n_workouts")
        out[name] = m
    return out


def score_table(scores: dict[str, dict]) -> pd.DataFrame:
    """`metrics_of`'s result as a table, best MAE first."""
    return pd.DataFrame(scores).T.sort_values("test_mae").rename_axis("prediction").round(3)


def model_summary(metrics: dict) -> dict:
    """The parts of `RunResult.metrics` worth recording next to a notebook."""
    keys = (
        "model",
        "test_mae",
        "test_rmse",
        "test_r2",
        "test_median_workout_mae",
        "val_mae",
        "best_epoch",
        "epochs_run",
        "train_seconds",
        "n_parameters",
        "device",
        "n_train",
        "n_val",
        "n_test",
        "baseline_mean_mae",
        "noise_floor_mae",
        "mae_over_floor",
    )
    return {k: metrics[k] for k in keys if k in metrics}


def per_workout_errors(prepared: PreparedData, predictions: dict[str, np.ndarray]) -> pd.DataFrame:
    """Long table: one row per test workout and model, with its MAE and who/what it was."""
    y = test_truth(prepared)
    meta = prepared.workouts.meta.iloc[prepared.split.test].reset_index(drop=True)
    return pd.concat(
        [
            meta[["id", "user_id", "sport", "gender"]].assign(
                test_row=np.arange(len(meta)), model=name, mae_bpm=per_workout_mae(pred, y)
            )
            for name, pred in predictions.items()
        ],
        ignore_index=True,
    )


def pick_workouts(mae_bpm: np.ndarray) -> dict[str, int]:
    """Test rows of the best, the median and the worst workout by per-workout MAE."""
    order = np.argsort(mae_bpm, kind="stable")
    return {"good": int(order[0]), "median": int(order[len(order) // 2]), "bad": int(order[-1])}


def error_by_time(
    predictions: dict[str, np.ndarray],
    true_bpm: np.ndarray,
    time_min: np.ndarray,
    bin_min: float = 2.0,
    min_points: int = 200,
) -> pd.DataFrame:
    """Mean absolute error against minutes into the workout (bins of `bin_min`), per model.

    Minutes, not sample index: sampling is uneven, so step 100 is 8 minutes into one workout and 20
    into another. Bins with fewer than `min_points` samples are left out (the long tail is noise)."""
    bins = np.floor(np.asarray(time_min, np.float64) / bin_min).astype(np.int64).ravel()
    rows = []
    for name, pred in predictions.items():
        err = np.abs(np.asarray(pred, np.float64) - true_bpm).ravel()
        table = pd.DataFrame({"bin": bins, "err": err}).groupby("bin")["err"].agg(["mean", "size"])
        table = table[table["size"] >= min_points]
        rows.append(
            pd.DataFrame(
                {
                    "minute": (table.index + 0.5) * bin_min,
                    "model": name,
                    "mae_bpm": table["mean"].to_numpy(),
                    "n_points": table["size"].to_numpy(),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def per_user_change(errors: pd.DataFrame, before: str, after: str) -> pd.DataFrame:
    """Per-user mean workout MAE under two models and the change (negative: `after` is better)."""
    table = errors.pivot_table(index="user_id", columns="model", values="mae_bpm", aggfunc="mean")[[before, after]]
    table["change_bpm"] = table[after] - table[before]
    return table.sort_values("change_bpm").reset_index()


def basic_model(cfg: RunConfig, prepared: PreparedData) -> dict:
    """The basic LSTM on the same data and split: the checkpoint 02 saved when it fits, else trained now.

    Returns its test predictions (rows in split order), history, metrics and where it came from."""
    checkpoint = Path(cfg.train.out_dir) / f"{cfg.model.model}_best.pt"
    loaded = load_model(checkpoint, prepared, cfg, cfg.train.device)
    if loaded is not None:
        return {**loaded, "source": f"loaded {checkpoint}"}
    result = run(cfg)
    return {
        "pred": result.test_pred_bpm,
        "history": result.history,
        "metrics": result.metrics,
        "source": f"trained here (no usable {checkpoint})",
    }


def held_out_family(cfg: RunConfig, variant: str | None = RANDOM) -> dict | None:
    """The notebook's recipe once more, trained and tested on a simulator family held out from every
    choice of the recipe (default `random`: each athlete draws each law), next to the figure on the
    default simulator, on which the recipe was chosen. None on real data, with no variant, or when the
    notebook already runs on that family. The checkpoint goes to `{out_dir}/held_out_{variant}`, so it
    does not replace the notebook's own."""
    if cfg.data.path or not variant:
        return None
    if variant not in HELD_OUT_VARIANTS:
        raise HRLSTMError(f"held_out_variant = {variant!r}: choose a held-out family: {', '.join(HELD_OUT_VARIANTS)}")
    if cfg.data.sim_variant == variant:
        return None
    out_dir = Path(cfg.train.out_dir) / f"held_out_{variant}"
    result = run(cfg.override({"data.sim_variant": variant, "train.out_dir": str(out_dir)}))
    return {"variant": variant, "data_path": str(result.prepared.workouts.source), **model_summary(result.metrics)}


def family_table(metrics: dict, held_out: dict | None, family: str) -> pd.DataFrame:
    """One model's test MAE, noise floor and their ratio on the notebook's data (`family`) and, where
    `held_out_family` ran, on the held-out family."""
    rows = {family: model_summary(metrics)}
    if held_out:
        rows[f"{held_out['variant']} (held out)"] = held_out
    columns = ["test_mae", "noise_floor_mae", "mae_over_floor", "n_test", "train_seconds"]
    return pd.DataFrame.from_dict(rows, orient="index").reindex(columns=columns).rename_axis("simulator family")


def held_out_table(*recorded: dict) -> pd.DataFrame:
    """One row per model from the notebooks' recorded metrics: test MAE and MAE over the noise floor on
    the data the notebook ran on and on the held-out family (`held_out_family`), where recorded."""
    rows = {}
    for rec in recorded:
        held_out = rec.get("held_out_family") or {}
        for name, m in rec.get("models", {}).items():
            if name not in held_out:
                continue
            other = held_out[name]
            rows[MODEL_LABELS.get(name, name)] = {
                "test_mae": m.get("test_mae"),
                "x_floor": m.get("mae_over_floor") or m["test_mae"] / m.get("noise_floor_mae", np.nan),
                f"test_mae ({other['variant']})": other["test_mae"],
                f"x_floor ({other['variant']})": other.get("mae_over_floor"),
            }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def load_model(checkpoint: str | Path, prepared: PreparedData, cfg: RunConfig, device: str = "cpu") -> dict | None:
    """Test predictions, history and metrics of a saved model trained on the same data, filters and split.

    None when the checkpoint is missing, unfinished, or was trained on other data."""
    if not Path(checkpoint).is_file():
        return None
    trained = TrainedModel.load(checkpoint, device)
    saved, metrics = trained.config, trained.metrics
    if (
        trained.payload.get("data_fingerprint") != prepared.workouts.fingerprint
        or "history" not in metrics
        or (saved.split, saved.filters, saved.parse) != (cfg.split, cfg.filters, cfg.parse)
    ):
        return None
    pred = trained.predict_bpm(prepared.workouts, rows=prepared.split.test)
    history = History(**{k: v for k, v in metrics["history"].items() if k in History.__dataclass_fields__})
    return {"pred": pred, "history": history, "metrics": metrics}


# ---- users and their embeddings ---------------------------------------------------------------


def user_traits(prepared: PreparedData, athletes: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per training user: mean heart rate and speed in training workouts, main sport, gender,
    and on simulated data the true traits (vo2max, resting and maximum heart rate, ...)."""
    train = prepared.workouts.subset(prepared.split.train)
    table = (
        workout_table(train)
        .groupby("user_id")
        .agg(
            n_train_workouts=("id", "size"),
            mean_heart_rate_bpm=("heart_rate_bpm", "mean"),
            mean_speed_kmh=("speed_kmh", "mean"),
            gender=("gender", "first"),
            main_sport=("sport_family", lambda s: s.mode().iloc[0]),
        )
        .reset_index()
    )
    if athletes is not None:
        truth = athletes.assign(user_id=athletes["userId"].astype(str))
        keep = ["user_id", "vo2max", "hr_rest", "hr_max", "tau_on_s", "age"]
        table = table.merge(truth[[c for c in keep if c in truth]], on="user_id", how="left")
    return table


def embedding_projection(
    model, user_ids: list[str], traits: pd.DataFrame, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    """The learned user vectors projected on their first two principal components, joined with the traits.

    Returns the table and the fraction of the embeddings' variance each component explains."""
    vectors = model.user_embedding.weight.detach().cpu().numpy()[1:]  # row 0 is the unknown user
    pca = PCA(n_components=min(2, *vectors.shape), random_state=seed)
    coords = pca.fit_transform(vectors)
    coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    table = pd.DataFrame({"user_id": list(user_ids), "pc1": coords[:, 0], "pc2": coords[:, 1]})
    return table.merge(traits, on="user_id", how="left"), pca.explained_variance_ratio_


def trait_correlations(projection: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlation of each principal component with each numeric user trait."""
    traits = [c for c in projection.select_dtypes("number").columns if c not in ("pc1", "pc2")]
    return projection[["pc1", "pc2", *traits]].corr().loc[traits, ["pc1", "pc2"]].round(2)


def colour_traits(projection: pd.DataFrame) -> list[str]:
    """Traits to colour the projection by: the true fitness on simulated data, else mean heart rate."""
    wanted = ["vo2max", "hr_rest", "mean_heart_rate_bpm"]
    return [c for c in wanted if c in projection and projection[c].notna().any()]


# ---- comparison -------------------------------------------------------------------------------


def comparison_table(*recorded: dict) -> pd.DataFrame:
    """One row per model and reference prediction from the notebooks' recorded metrics, best MAE first."""
    rows = {}
    for rec in recorded:
        for name, m in rec.get("references", {}).items():
            rows.setdefault(name, {"kind": "reference", **m})
        for name, m in rec.get("models", {}).items():
            rows[MODEL_LABELS.get(name, name)] = {"kind": "model", **m}
    columns = ["kind", "test_mae", "test_rmse", "test_r2", "test_median_workout_mae"]
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=columns)
    return table.sort_values("test_mae").rename_axis("prediction")
