"""What each input and each model choice adds, one row each, on one split.

    python benchmarks/ablation.py --data /tmp/s.json.gz --epochs 10

Every row trains with the same data, split, seed and recipe, changing one thing
against the seed's experiment (basic LSTM on speed, altitude and gender), and
prints test MAE / RMSE / R² with the change in MAE. The baselines
(`hr-lstm baselines`) and, on simulated data, the noise floor put the numbers
in context.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace

import pandas as pd

from hr_lstm.experiment import DataConfig, RunConfig, TrainConfig
from hr_lstm.features import SEED_INPUTS, FeatureConfig
from hr_lstm.models import ModelConfig
from hr_lstm.train import run

EXTRAS = ("time_step", "grade", "time_elapsed", "altitude_change", "derived_speed", "sport")
ALL_INPUTS = SEED_INPUTS + EXTRAS


def rows() -> list[tuple[str, str, tuple[str, ...]]]:
    out = [("seed: lstm, speed+altitude+gender", "lstm", SEED_INPUTS)]
    out += [(f"lstm + {name}", "lstm", SEED_INPUTS + (name,)) for name in EXTRAS]
    out += [("lstm, all inputs", "lstm", ALL_INPUTS),
            ("lstm_embeddings, seed inputs", "lstm_embeddings", SEED_INPUTS),
            ("lstm_embeddings, all inputs", "lstm_embeddings", ALL_INPUTS)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="FitRec-format file (default: the simulated set)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", help="rows whose name contains this")
    args = parser.parse_args()

    model = ModelConfig(hidden_size=args.hidden_size, num_layers=args.num_layers)
    results = []
    with tempfile.TemporaryDirectory() as out:
        for name, kind, inputs in rows():
            if args.only and args.only not in name:
                continue
            cfg = RunConfig(
                data=DataConfig(path=args.data),
                features=FeatureConfig(inputs=inputs),
                model=replace(model, model=kind),
                train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device,
                                  seed=args.seed, out_dir=out, patience=max(3, args.epochs // 3)),
            )
            cfg.split.seed = args.seed
            started = time.perf_counter()
            m = run(cfg, log=lambda *a: None).metrics
            results.append({"row": name, "test MAE": m["test_mae"], "RMSE": m["test_rmse"], "R²": m["test_r2"],
                            "noise floor": m.get("noise_floor_mae"), "s": time.perf_counter() - started})
            print(f"{name:40s} MAE {m['test_mae']:6.2f}", flush=True)
    table = pd.DataFrame(results).set_index("row")
    table["Δ MAE vs first row"] = table["test MAE"] - table["test MAE"].iloc[0]  # the seed row unless --only
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
