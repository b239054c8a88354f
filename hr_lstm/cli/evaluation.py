"""`hr-lstm evaluate` and `baselines`: scores on the same test split as training."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .. import __version__
from ..console import say
from ..data.splits import SPLIT_KINDS
from ..errors import HRLSTMError
from ..evaluation.evaluate import evaluate_checkpoint
from ..models.baselines import BASELINES, BaselineConfig, baseline_table, fit
from ..models.bundled import checkpoint_or_bundled
from ..models.checkpoint import plain
from ..paths import check_writable, write_text_atomic
from ..training.config import RunConfig
from ..training.prepare import prepare
from .common import CHECKPOINT_HELP, add_data_arguments, comma_list, data_overrides, flag, progress


def add_evaluate_arguments(parser) -> None:
    parser.description = (
        f"{parser.description}: MAE, RMSE and R² on the test split it was trained with "
        "(or on --data), written as JSON beside the checkpoint"
    )
    flag(
        parser,
        "checkpoint",
        default=None,
        metavar="PATH",
        help=CHECKPOINT_HELP,
    )
    flag(parser, "data", metavar="PATH", help="data to evaluate on (default: the data it was trained on)")
    flag(parser, "device", default="auto", help="cpu, cuda or auto (cuda when available)")
    flag(parser, "out", metavar="PATH", help="metrics JSON (default: beside the checkpoint)")
    flag(
        parser,
        "warm_start_min",
        type=comma_list,
        default=None,
        metavar="K,..",
        help="also score the minutes after k with a warm start from the first k measured minutes (e.g. 0,2,5)",
    )


def run_evaluate(args) -> int:
    try:
        minutes = tuple(float(k) for k in args.warm_start_min or ())
    except ValueError:
        raise HRLSTMError(f"--warm-start-min {','.join(args.warm_start_min)}: expected minutes, e.g. 0,2,5") from None
    if any(k < 0 for k in minutes):
        raise HRLSTMError("--warm-start-min: minutes must not be negative")
    given = args.checkpoint
    args.checkpoint = checkpoint_or_bundled(given, say)
    default_out = Path(args.checkpoint).stem + "_evaluation.json"  # the bundled model's: here, not in the package
    out = Path(args.out) if args.out else Path(args.checkpoint).with_name(default_out) if given else Path(default_out)
    check_writable(out.parent)  # before the evaluation, not after it
    result = evaluate_checkpoint(args.checkpoint, args.data, device=args.device, warm_start_min=minutes)
    write_text_atomic(out, json.dumps(plain(result), indent=1, allow_nan=False))
    say(f"Wrote {out}")
    return 0


def add_baselines_arguments(parser) -> None:
    c = BaselineConfig()
    add_data_arguments(parser)
    g = parser.add_argument_group("baselines")
    flag(
        g, "out", default="checkpoints", metavar="DIR", help="where baselines_metrics.json goes (default: checkpoints/)"
    )
    flag(g, "seed", type=int, default=0, help="the split's seed (as for train)")
    flag(g, "split", choices=SPLIT_KINDS, default="user_time", help="as for train: the same split as the LSTMs")
    flag(g, "baselines", type=comma_list, default=c.baselines, metavar="A,B,..", help=f"from: {', '.join(BASELINES)}")
    flag(
        g,
        "smoothing_s",
        type=comma_list,
        default=c.smoothing_s,
        metavar="S,..",
        help="linear model's time constants, s",
    )
    flag(g, "ridge_alpha", type=float, default=c.ridge_alpha)
    flag(g, "train_stride", type=int, default=c.train_stride, help="linear model fits every n-th training step")
    flag(g, "max_nfev", type=int, default=c.max_nfev, help="least-squares evaluations per athlete")
    flag(
        g,
        "cold_start",
        choices=("median", "pooled"),
        default=c.cold_start,
        help="physiological model for athletes not in the training split: median parameters or a pooled fit",
    )


def run_baselines(args) -> int:
    run_cfg = RunConfig().override({**data_overrides(args), "split.kind": args.split, "split.seed": args.seed})
    try:
        smoothing = tuple(float(v) for v in args.smoothing_s)
    except ValueError:
        smoothing = ()
    if not smoothing or min(smoothing) <= 0 or args.train_stride < 1 or args.max_nfev < 1:
        raise HRLSTMError("--smoothing-s: positive seconds (e.g. 30,60,120); --train-stride, --max-nfev: at least 1")
    cfg = BaselineConfig(
        smoothing_s=smoothing,
        ridge_alpha=args.ridge_alpha,
        train_stride=args.train_stride,
        max_nfev=args.max_nfev,
        baselines=tuple(args.baselines),
        cold_start=args.cold_start,
    )
    check_writable(Path(args.out))  # before the fits, not after them
    prepared = prepare(run_cfg)
    fitted = fit(prepared, cfg, log=progress)
    table = baseline_table(prepared, cfg, fitted)
    say(f"Baselines on the test split ({args.split}, seed {args.seed}): {prepared.split.sizes()}")
    say(table.to_string(float_format=lambda v: f"{v:.3f}"))
    if fitted.physio_params is not None:
        n_users = len(fitted.physio_params)
        say(
            f"physiological: {n_users} athletes fitted in {fitted.fit_seconds['physiological']:.1f} s "
            f"({fitted.fit_seconds['physiological'] / n_users:.2f} s each)"
        )
    out = Path(args.out) / "baselines_metrics.json"
    rows = table.reset_index(names="baseline")
    result = {
        "table": rows.astype(object).where(rows.notna(), None).to_dict(orient="records"),  # NaN -> null
        "config": asdict(cfg),
        "run_config": run_cfg.as_dict(),
        "n_train": len(prepared.split.train),
        "n_val": len(prepared.split.val),
        "n_test": len(prepared.split.test),
        "physiological_cold_start_params": None
        if fitted.physio_params is None
        else fitted.cold_start_params().to_dict(),
        "data_path": str(prepared.workouts.source),
        "data_fingerprint": prepared.workouts.fingerprint,
        "hr_lstm_version": __version__,
    }
    write_text_atomic(out, json.dumps(plain(result), indent=1, allow_nan=False))
    say(f"Wrote {out}")
    return 0
