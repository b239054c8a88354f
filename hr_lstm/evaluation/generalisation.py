"""Does a recipe carry over to heart-rate laws it was not tuned on? Leave-one-family-out over the
simulator's variants (`hr-lstm synth --list-variants`).

Each train variant gets one run of the recipe (its training split: the athletes' earlier
workouts); the model is then scored on the test split (the athletes' latest workouts) of every
test variant. The diagonal is the recipe applied to a family's data: the figure to report for
a family held out from every choice. Off the diagonal the same model meets another family's laws;
the variants draw the same athletes for the same seed, so their embeddings still apply.
Cells are test MAE over the noise floor (the noise-free heart rate's MAE), so families with
noisier sensors stay comparable.

    python benchmarks/generalisation.py --quick        # CPU-sized
    python benchmarks/generalisation.py --device cuda  # the full table
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..console import say
from ..data.features import target
from ..data.source import DataConfig, load_clean_bpm, resolve_data_path
from ..data.splits import make_split
from ..metrics import noise_floor_mae
from ..training.config import RunConfig
from ..training.prepare import load_filtered
from ..training.run import run
from ..training.trained import TrainedModel


@dataclass
class GeneralisationConfig:
    variants: tuple[str, ...]  # test variants (columns)
    train_variants: tuple[str, ...] = ()  # rows; empty: every test variant
    models: tuple[str, ...] = ("lstm_embeddings",)
    users: int = 300
    seed: int = 0
    changes: dict = field(default_factory=dict)  # recipe overrides for RunConfig.override, e.g. {"train.steps": 600}
    out_dir: str = "checkpoints/generalisation"


def variant_data(variant: str, users: int, seed: int) -> Path:
    """The simulated set of one variant (written once, then reused, as the default set is)."""
    return resolve_data_path(DataConfig(sim_users=users, sim_seed=seed, sim_variant=variant))


def score_on(trained: TrainedModel, path: Path) -> dict:
    """The checkpoint's recipe (filters, split) applied to `path`; test-split MAE against the recorded
    heart rate and the noise floor there."""
    cfg = trained.config.override({"data.path": str(path)})
    _, workouts, _ = load_filtered(cfg, log=lambda *a: None)
    rows = make_split(workouts.meta, cfg.split).test
    pred = trained.predict_bpm(workouts, rows=rows)
    true = target(workouts.subset(rows))
    clean = load_clean_bpm(path, workouts)
    mae = float(np.abs(pred - true).mean())
    floor = noise_floor_mae(true, clean[rows]) if clean is not None else float("nan")
    known = float((trained.user_rows(workouts.meta["user_id"].iloc[rows]) != 0).float().mean())
    return {"test_mae": mae, "noise_floor_mae": floor, "mae_over_floor": mae / floor, "known_users": known}


def run_generalisation(cfg: GeneralisationConfig, log=say) -> pd.DataFrame:
    """One row per (model, train variant, test variant): MAE, floor, ratio, training seconds."""
    paths = {v: variant_data(v, cfg.users, cfg.seed) for v in dict.fromkeys(cfg.variants + cfg.train_variants)}
    rows = []
    for model in cfg.models:
        for train_variant in cfg.train_variants or cfg.variants:
            changes = {
                **cfg.changes,
                "model.model": model,
                "data.path": str(paths[train_variant]),
                "train.seed": cfg.seed,
                "split.seed": cfg.seed,
                "train.out_dir": f"{cfg.out_dir}/{model}_{train_variant}_u{cfg.users}_s{cfg.seed}",
            }
            log(f"training {model} on {train_variant} ({cfg.users} athletes) ...")
            started = time.perf_counter()
            result = run(RunConfig().override(changes).validate(), log=lambda *a: None)
            seconds = time.perf_counter() - started
            trained = TrainedModel.load(result.checkpoint_path, result.config.train.device)
            for test_variant in cfg.variants:
                cell = score_on(trained, paths[test_variant])
                rows.append(dict(model=model, train=train_variant, test=test_variant, train_seconds=seconds, **cell))
                log(
                    f"{model} trained on {train_variant} ({seconds:.0f} s), tested on {test_variant}: "
                    f"MAE {cell['test_mae']:.2f} = {cell['mae_over_floor']:.2f}x floor"
                )
    return pd.DataFrame(rows)


def ratio_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Rows (model, train variant), columns test variant, cells MAE / noise floor."""
    return table.pivot_table(index=["model", "train"], columns="test", values="mae_over_floor", sort=False)
