"""The `hr-lstm` command: synth, train, evaluate, import (and more as they land).

Every user-facing failure is an `HRLSTMError`: one line on stderr naming the
file and the problem, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from .console import say
from .errors import HRLSTMError

_SEED_FLAGS_NOTE = "Accepts the seed train.py's flags (--hidden_size etc.) and their dashed forms."


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs) -> None:
    """Register --snake_case (the seed's spelling) with --dashed-case as an alias."""
    names = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    parser.add_argument(*names, dest=name, **kwargs)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    from .dataset import FilterConfig
    from .paths import DEFAULT_SIM_USERS

    g = p.add_argument_group("data")
    _flag(g, "data", metavar="PATH", help="FitRec-format file (.json/.json.gz); default: the simulated set")
    _flag(g, "sport", action="append", type=_csv, metavar="NAME",
          help="sport family (run, bike, walk, other) or exact sport name; repeat or comma-separate "
          f"(default: {','.join(FilterConfig.sports)})")
    _flag(g, "min_workouts", type=int, default=FilterConfig.min_workouts_per_user, help="drop users with fewer workouts")
    _flag(g, "hr_range", type=_csv, default=None, metavar="MIN,MAX", help="plausible heart rate (default 30,230)")
    _flag(g, "sim_users", type=int, default=DEFAULT_SIM_USERS, help="athletes in the default simulated set")
    _flag(g, "skip_bad", action="store_true", help="skip malformed records (with a count) instead of stopping")
    _flag(g, "no_cache", action="store_true", help="re-parse the data file instead of using its cache")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from .experiment import LOSSES, LR_SCHEDULES, TrainConfig
    from .features import FEATURE_SETS, FEATURES, FeatureConfig
    from .models import MODEL_KINDS, USER_CONDITIONING, ModelConfig
    from .splits import SPLIT_KINDS

    m, t = ModelConfig(), TrainConfig()
    g = p.add_argument_group("model (the seed's flags)")
    _flag(g, "model", choices=MODEL_KINDS, default=m.model)
    _flag(g, "hidden_size", type=int, default=m.hidden_size)
    _flag(g, "num_layers", type=int, default=m.num_layers)
    _flag(g, "dropout", type=float, default=m.dropout)
    _flag(g, "embedding_dim", type=int, default=m.embedding_dim)
    _flag(g, "user_conditioning", choices=USER_CONDITIONING, default=m.user_conditioning,
          help="lstm_embeddings: embedding appended to each step (concat), as the LSTM's initial state, or both")
    g = p.add_argument_group("training (the seed's flags)")
    _flag(g, "epochs", type=int, default=t.epochs)
    _flag(g, "batch_size", type=int, default=t.batch_size)
    _flag(g, "lr", type=float, default=t.lr)
    _flag(g, "patience", type=int, default=t.patience)
    _flag(g, "device", default=t.device, help="cpu, cuda or auto (default: cuda when available)")
    g = p.add_argument_group("added")
    _flag(g, "out", default=t.out_dir, metavar="DIR", help="checkpoint folder (default: checkpoints/)")
    _flag(g, "seed", type=int, default=t.seed, help="seeds weights, shuffling and the split")
    _flag(g, "split", choices=SPLIT_KINDS, default="user_time", help="user_time (FitRec's), workout, or user (cold start)")
    sets = "; ".join(f"{k} = {','.join(v)}" for k, v in FEATURE_SETS.items() if k != "all")
    _flag(g, "features", type=_csv, default=FeatureConfig().inputs, metavar="A,B,..",
          help=f"inputs from: {', '.join(FEATURES)}; or a named set ({sets}; all)")
    _flag(g, "no_cudnn", action="store_true", help="disable cuDNN (the seed's workaround for old GPUs; slow)")
    _flag(g, "weight_decay", type=float, default=t.weight_decay)
    _flag(g, "grad_clip", type=float, default=t.grad_clip, help="max gradient norm (0: off)")
    _flag(g, "loss", choices=LOSSES, default=t.loss, help="training loss (huber: quadratic within "
          "--huber_delta BPM)")
    _flag(g, "huber_delta", type=float, default=t.huber_delta_bpm, help="BPM")
    _flag(g, "lr_schedule", choices=LR_SCHEDULES, default=t.lr_schedule,
          help="onecycle: warm up, then cosine-anneal to ~0 by --epochs")
    _flag(g, "amp", choices=("off", "bf16"), default=t.amp, help="bf16 autocast (GPU)")
    _flag(g, "compile", action="store_true", help="torch.compile the model")
    _flag(g, "threads", type=int, default=t.threads, help="CPU threads (default: all cores of this process)")
    _flag(g, "resume", action="store_true", help="continue from {out}/{model}_last.pt (written every epoch)")


def data_config_from_args(args, cfg) -> None:
    """Fill the data, parse and filter parts of a RunConfig from parsed flags."""
    cfg.data.path = args.data
    cfg.data.sim_users = args.sim_users
    cfg.data.skip_bad = args.skip_bad
    cfg.data.cache = not args.no_cache
    if args.sport:
        cfg.filters.sports = tuple(s for group in args.sport for s in group)
    cfg.filters.min_workouts_per_user = args.min_workouts
    if args.hr_range:
        try:
            cfg.filters.hr_min_bpm, cfg.filters.hr_max_bpm = (float(v) for v in args.hr_range)
        except ValueError:
            raise HRLSTMError(f"--hr_range {','.join(args.hr_range)}: expected MIN,MAX in BPM") from None


def run_config_from_args(args):
    from .experiment import RunConfig
    from .features import FeatureConfig

    cfg = RunConfig()
    data_config_from_args(args, cfg)
    cfg.features = FeatureConfig(inputs=args.features)
    cfg.split.kind, cfg.split.seed = args.split, args.seed
    for name in ("model", "hidden_size", "num_layers", "dropout", "embedding_dim", "user_conditioning"):
        setattr(cfg.model, name, getattr(args, name))
    for name in ("epochs", "batch_size", "lr", "patience", "device", "seed", "weight_decay", "grad_clip", "amp",
                 "compile", "threads", "resume", "loss", "lr_schedule"):
        setattr(cfg.train, name, getattr(args, name))
    cfg.train.out_dir, cfg.train.cudnn, cfg.train.huber_delta_bpm = args.out, not args.no_cudnn, args.huber_delta
    for name, value, low in (("epochs", args.epochs, 1), ("batch_size", args.batch_size, 1), ("hidden_size", args.hidden_size, 1),
                             ("num_layers", args.num_layers, 1), ("patience", args.patience, 1)):
        if value < low:
            raise HRLSTMError(f"--{name} {value}: must be at least {low}")
    if not 0.0 <= args.dropout < 1.0:
        raise HRLSTMError(f"--dropout {args.dropout}: must be in [0, 1)")
    return cfg


def cmd_train(args) -> int:
    from .train import run

    run(run_config_from_args(args))
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, args.data, device=args.device)
    out = Path(args.out) if args.out else Path(args.checkpoint).with_name(Path(args.checkpoint).stem + "_evaluation.json")
    out.write_text(json.dumps(result, indent=1))
    say(f"Wrote {out}")
    return 0


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with `only` just that command's arguments (its module alone is
    imported: `hr-lstm ingest` should not pay for importing torch)."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="hr-lstm", description="Heart-rate prediction from speed and altitude with LSTMs.")
    parser.add_argument("--version", action="version", version=f"hr_lstm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # name, help, module: each module brings `add_<x>_arguments(parser)` and the function that runs it.
    commands = [
        ("synth", "write a simulated FitRec-format data set (+ noise-free sidecar)", "simulate", "synth", "run_synth"),
        ("ingest", "parse a FitRec-format file into the array cache (parallel)", "ingest", "ingest", "run_ingest"),
        ("train", "train a model; writes checkpoint, curves and metrics", None, None, None),
        ("evaluate", "metrics of a saved checkpoint", None, None, None),
        ("baselines", "mean, per-user, linear and physiological baselines on the same split", "baselines", "baselines", "run_baselines"),
        ("import", "FIT/GPX/TCX recordings -> FitRec-format workouts", "recordings", "import", "run_import"),
        ("predict", "predicted vs measured heart rate for recordings (CSV + PNG)", "predict", "predict", "run_predict"),
        ("personalize", "fit a new athlete's embedding from their own workouts", "personalize", "personalize", "run_personalize"),
        ("report", "run the notebooks headless (papermill) into reports/*.html", "report", "report", "run_report_command"),
    ]
    for name, help_text, module_name, add_name, run_name in commands:
        if only in {c[0] for c in commands} and name != only:
            sub.add_parser(name, help=help_text)
        elif name == "train":
            p = sub.add_parser(name, help=help_text, description=_SEED_FLAGS_NOTE)
            add_data_arguments(p)
            add_train_arguments(p)
            p.set_defaults(func=cmd_train)
        elif name == "evaluate":
            p = sub.add_parser(name, help=help_text)
            _flag(p, "checkpoint", required=True, metavar="PATH")
            _flag(p, "data", metavar="PATH", help="data to evaluate on (default: the data it was trained on)")
            _flag(p, "device", default="cpu")
            _flag(p, "out", metavar="PATH", help="metrics JSON (default: beside the checkpoint)")
            p.set_defaults(func=cmd_evaluate)
        else:
            module = importlib.import_module(f".{module_name}", __package__)
            p = sub.add_parser(name, help=help_text, description=help_text)
            getattr(module, f"add_{add_name}_arguments")(p)
            p.set_defaults(func=getattr(module, run_name))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(only=next((a for a in argv if not a.startswith("-")), None)).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HRLSTMError as exc:
        print(f"hr-lstm {args.command}: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print(f"hr-lstm {args.command}: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
