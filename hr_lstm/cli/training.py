"""`hr-lstm train` (and `python -m hr_lstm.train`): the original project's flags, generated from RunConfig.

Each flag names one setting of `RunConfig` and takes its default, type and choices from
there, so the dataclasses stay the one place where the recipe is written down.
"""

from __future__ import annotations

from ..data.features import FEATURE_SETS, FEATURES
from ..training.config import CHOICES, RunConfig
from ..training.run import calibrate_band, run
from .common import add_data_arguments, comma_list, data_overrides, flag

ORIGINAL_FLAGS_NOTE = (
    "Flags are dashed (--hidden-size); the original project's train.py spellings (--hidden_size etc.) are accepted too."
)
_SETS = "; ".join(f"{k} = {','.join(v)}" for k, v in FEATURE_SETS.items() if k not in ("default", "all", "seed"))

# (flag, setting, help) by group; the original project's flags first, under their old names.
TRAIN_FLAGS = {
    "model (the original project's flags)": [
        ("model", "model.model", None),
        ("hidden_size", "model.hidden_size", None),
        ("num_layers", "model.num_layers", None),
        ("dropout", "model.dropout", None),
        ("embedding_dim", "model.embedding_dim", None),
        (
            "user_conditioning",
            "model.user_conditioning",
            "lstm_embeddings: embedding appended to each step (concat), as the LSTM's initial state, or both",
        ),
    ],
    "training (the original project's flags)": [
        (
            "epochs",
            "train.epochs",
            "passes over the training split, as in the original project (0: the --steps budget)",
        ),
        ("batch_size", "train.batch_size", None),
        ("lr", "train.lr", None),
        (
            "patience",
            "train.patience",
            "validation checks (epochs, under --epochs) without a better MAE before stopping",
        ),
        ("device", "train.device", "cpu, cuda or auto (default: cuda when available)"),
    ],
    "added": [
        ("steps", "train.steps", "optimiser steps of the run, whatever the data size and batch size (unless --epochs)"),
        ("min_epochs", "train.min_epochs", "under --steps, at least this many passes over the training split"),
        ("eval_every", "train.eval_every", "steps between validation checks under --steps (0: 1/20 of the run)"),
        ("out", "train.out_dir", "checkpoint folder (default: checkpoints/)"),
        ("seed", "train.seed", "random seed of the weights, the shuffling and the split"),
        ("split", "split.kind", "user_time (FitRec's), workout, or user (cold start)"),
        (
            "features",
            "features.inputs",
            f"inputs from: {', '.join(FEATURES)}; or a named set ({_SETS}; all; default: all but previous_workout)",
        ),
        ("weight_decay", "train.weight_decay", None),
        ("grad_clip", "train.grad_clip", "max gradient norm (0: off)"),
        ("loss", "train.loss", "training loss (huber: quadratic within --huber-delta BPM)"),
        ("huber_delta", "train.huber_delta_bpm", "BPM"),
        ("lr_schedule", "train.lr_schedule", "onecycle: warm up, then cosine-anneal to ~0 by the run's last step"),
        ("amp", "train.amp", "bf16 autocast (GPU)"),
        ("compile", "train.compile", "torch.compile the model"),
        ("threads", "train.threads", "CPU threads (default: all cores of this process)"),
        ("resume", "train.resume", "continue from {out}/{model}_last.pt (written at every validation check)"),
    ],
}
SETTING_OF_FLAG = {name: key for group in TRAIN_FLAGS.values() for name, key, _ in group}
FLAG_LABELS = {key: f"--{name.replace('_', '-')}" for name, key in SETTING_OF_FLAG.items()} | {
    "data.sim_users": "--sim-users"
}


def add_recipe_arguments(parser) -> None:
    defaults = RunConfig()
    for title, flags in TRAIN_FLAGS.items():
        group = parser.add_argument_group(title)
        for name, key, help_text in flags:
            default = defaults.get(key)
            if isinstance(default, bool):
                flag(group, name, action="store_true", help=help_text)
            elif key == "features.inputs":
                flag(group, name, type=comma_list, default=default, metavar="A,B,..", help=help_text)
            else:
                kind = {"train.out_dir": dict(metavar="DIR")}.get(key, {})
                kind |= {"choices": CHOICES[key]} if key in CHOICES else {"type": type(default)}
                flag(group, name, default=default, help=help_text, **kind)
        if title == "added":  # the one negative flag: cuDNN is on unless told otherwise
            flag(
                group,
                "no_cudnn",
                action="store_true",
                help="disable cuDNN (the original project's workaround for old GPUs; slow)",
            )


def run_config_from_args(args) -> RunConfig:
    changes = data_overrides(args)
    changes |= {key: getattr(args, name) for name, key in SETTING_OF_FLAG.items()}
    changes |= {"split.seed": args.seed, "train.cudnn": not args.no_cudnn}
    return RunConfig().override(changes).validate(FLAG_LABELS)


def add_train_arguments(parser) -> None:
    parser.description = f"{parser.description}. {ORIGINAL_FLAGS_NOTE}"
    add_data_arguments(parser)
    add_recipe_arguments(parser)


def run_train(args) -> int:
    run(run_config_from_args(args), command=getattr(args, "command_line", None))
    return 0


def add_calibrate_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint written by train")
    parser.add_argument(
        "--strangers",
        nargs="+",
        default=None,
        metavar="DIR",
        help="instead: fit the band for an athlete the model does not know on these real athletes' recordings, "
        "one folder per person (one is enough when the checkpoint has a band for strangers to borrow from)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")


def run_calibrate(args) -> int:
    """Fit the checkpoint's 80% band and warm-start calibration on its validation split again and write them into it;
    with --strangers, only the band for an athlete it does not know, on those real athletes."""
    if args.strangers:
        from ..inference.strangers import calibrate_strangers  # here: `train` need not load the readers and pyplot

        unknown = calibrate_strangers(args.checkpoint, args.strangers, args.device)
        print(
            f"Calibrated the band for an athlete {args.checkpoint} does not know on {unknown.fitted_on} "
            f"({unknown.n_workouts} workouts): at 0-5 min {unknown.lower_bpm[0]:+.1f} / {unknown.upper_bpm[0]:+.1f} "
            f"BPM, after 60 min {unknown.lower_bpm[4]:+.1f} / {unknown.upper_bpm[4]:+.1f} BPM",
            flush=True,
        )
        return 0
    fit, figures, warm_start = calibrate_band(args.checkpoint, args.device)
    by_sport = ", ".join(f"{k} {v:.0%}" for k, v in figures.get("test_band_coverage_by_sport", {}).items())
    print(
        f"Calibrated the 80% band of {args.checkpoint} on {fit.n_workouts} validation workouts: it covers "
        f"{figures['test_band_coverage']:.1%} of the test split's measured points ({by_sport})",
        flush=True,
    )
    for k, carried in warm_start.items():
        lasting = (
            "for good" if carried["persistence_s"] is None else f"fading over {carried['persistence_s'] / 60:g} min"
        )
        print(f"Warm start from minute {k}: {carried['slope']:.2f} of the gap carries over, {lasting}", flush=True)
    return 0
