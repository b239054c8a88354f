"""Recipe sweep: many `hr-lstm train` runs on one data set, side by side, one row each.

    python benchmarks/recipe_sweep.py --data /tmp/s.json.gz --device cuda --jobs 8 --epochs 40

How the default recipe was chosen (docs/benchmarks.md): every row is the same
command with a few flags changed, run as its own process (`--jobs` at a time;
on a GPU several small LSTMs share the card well). Later flags override
earlier ones, so each row is the sweep's base plus its change. Rows run with early
stopping off, so the validation MAE after 5, 10, 15, ... epochs shows how
many epochs each recipe needs; test MAE is at the best validation epoch.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from hr_lstm.data.features import ALL_INPUTS

# The recipe the sweeps started from (MSE, constant lr: the original project's, before the default changed) and
# the inputs they had: every input but days_since_first and sport_variant, which came after them
# (docs/benchmarks.md).
BASE = ["--loss", "mse", "--lr_schedule", "constant"]
SWEPT = tuple(i for i in ALL_INPUTS if i not in ("days_since_first", "sport_variant"))


def inputs_without(name: str) -> list[str]:
    return ["--features", ",".join(i for i in SWEPT if i != name)]


EMB_ALL = BASE + ["--model", "lstm_embeddings", "--features", ",".join(SWEPT), "--lr", "3e-3"]
CHOICES: dict[str, list[str]] = {
    "original: lstm, original inputs, lr 1e-3": BASE + ["--model", "lstm", "--features", "original", "--lr", "1e-3"],
    "lstm, all inputs": EMB_ALL + ["--model", "lstm"],
    "emb, original inputs": EMB_ALL + ["--features", "original"],
    "emb, all inputs (concat)": EMB_ALL,
    "emb, all inputs, lr 1e-3": EMB_ALL + ["--lr", "1e-3"],
    "emb, all but previous_workout": EMB_ALL + inputs_without("previous_workout"),
    "emb, all but sport": EMB_ALL + inputs_without("sport"),
    "emb, init_state": EMB_ALL + ["--user_conditioning", "init_state"],
    "emb, both": EMB_ALL + ["--user_conditioning", "both"],
    "emb, hidden 128": EMB_ALL + ["--hidden_size", "128"],
    "emb, batch 64": EMB_ALL + ["--batch_size", "64"],
    "emb, batch 64 lr 5e-3": EMB_ALL + ["--batch_size", "64", "--lr", "5e-3"],
    "emb, dropout 0": EMB_ALL + ["--dropout", "0"],
    "emb, embedding 32": EMB_ALL + ["--embedding_dim", "32"],
    "emb, 1 layer": EMB_ALL + ["--num_layers", "1"],
}
# The training loss and learning-rate schedule, for a fixed budget of --epochs.
CYCLE = EMB_ALL + ["--lr_schedule", "onecycle"]
RECIPE: dict[str, list[str]] = {
    "emb, mse, constant lr": EMB_ALL,
    "emb, mse, onecycle": CYCLE,
    "emb, mae, constant lr": EMB_ALL + ["--loss", "mae"],
    "emb, mae, onecycle": CYCLE + ["--loss", "mae"],
    "emb, huber 5, onecycle": CYCLE + ["--loss", "huber"],
    "emb, mae, onecycle, lr 5e-3": CYCLE + ["--loss", "mae", "--lr", "5e-3"],
    "emb, mae, onecycle, b64 lr 5e-3": CYCLE + ["--loss", "mae", "--lr", "5e-3", "--batch_size", "64"],
    "original lstm, original inputs, mae, onecycle": CYCLE
    + ["--model", "lstm", "--features", "original", "--loss", "mae"],
    "emb, mae, onecycle, both": CYCLE + ["--loss", "mae", "--user_conditioning", "both"],
    "emb, mae, onecycle, dropout 0": CYCLE + ["--loss", "mae", "--dropout", "0"],
    "emb, mae, onecycle, hidden 96": CYCLE + ["--loss", "mae", "--hidden_size", "96"],
    "emb, huber 2, onecycle": CYCLE + ["--loss", "huber", "--huber_delta", "2"],
}
SETS = {"choices": CHOICES, "recipe": RECIPE}


def run_row(name: str, extra: list[str], common: list[str], out: Path, jsonl: str | None = None) -> dict:
    folder = out / name.replace(" ", "_").replace(",", "").replace(":", "")
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "hr_lstm.cli", "train", *common, *extra, "--out", str(folder)],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        print(f"{name}: FAILED\n{proc.stderr[-2000:]}", flush=True)
        return {"row": name, "failed": True}
    metrics = json.loads(next(folder.glob("*_metrics.json")).read_text())
    val = metrics["history"]["val_mae"]
    row = {
        "row": name,
        "test MAE": metrics["test_mae"],
        "x floor": metrics.get("mae_over_floor"),
        "best epoch": metrics["best_epoch"],
        "s": round(time.perf_counter() - started),
    }
    row.update({f"val@{e}": val[e - 1] for e in (5, 10, 15, 20, 30, 40, 60) if e <= len(val)})
    print(f"{name:36s} test MAE {metrics['test_mae']:6.2f}  best epoch {metrics['best_epoch']}", flush=True)
    if jsonl:  # as rows finish, so a run cut short still leaves what it measured
        with open(jsonl, "a") as f:
            f.write(json.dumps(row) + "\n")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument(
        "--rows",
        choices=SETS,
        default="choices",
        help="choices: inputs and model choices; recipe: training loss and learning-rate schedule",
    )
    parser.add_argument("--only", help="rows whose name contains this")
    parser.add_argument("--jsonl", help="also append each finished row here, as JSON lines")
    args = parser.parse_args()
    common = [
        "--data",
        args.data,
        "--device",
        args.device,
        "--epochs",
        str(args.epochs),
        "--patience",
        str(args.epochs),
    ]
    rows = {k: v for k, v in SETS[args.rows].items() if not args.only or args.only in k}
    # Parse and cache the data once before the parallel rows start.
    subprocess.run([sys.executable, "-m", "hr_lstm.cli", "ingest", args.data], check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda kv: run_row(kv[0], kv[1], common, Path(tmp), args.jsonl), rows.items()))
    table = pd.DataFrame([r for r in results if not r.get("failed")]).set_index("row")
    print(table.round(2).to_string())


if __name__ == "__main__":
    main()
