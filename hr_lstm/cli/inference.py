"""`hr-lstm predict` and `personalize`: a trained model on a person's recordings."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..console import say
from ..data.recordings import GENDERS
from ..errors import DataError, HRLSTMError
from ..inference.finetune import RUNG_CHOICES, PersonalizeConfig
from ..inference.personalize import personalize
from ..inference.predict import PNG_AUTO_MAX, PNG_CHOICES, predict_files
from ..models.bundled import checkpoint_or_bundled
from ..paths import check_writable, output_lock
from .common import CHECKPOINT_HELP, SPORT_HELP, flag, sport_name

MAX_WARM_START_MIN = 60.0  # a longer warm start leaves little to predict, and no calibration was fitted past 5


def add_predict_arguments(parser) -> None:
    """Arguments of `hr-lstm predict --checkpoint PATH FILE... [--out DIR] [--user ID] [--gender G]`."""
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="FIT/GPX/TCX/CSV recordings, FitRec files (.json[.gz]), folders of them or a bulk export folder",
    )
    parser.add_argument("--checkpoint", default=None, metavar="PATH", help=CHECKPOINT_HELP)
    parser.add_argument(
        "--out", default="predictions", metavar="DIR", help="folder for CSV and PNG (default: predictions/)"
    )
    parser.add_argument(
        "--user",
        default=None,
        metavar="ID",
        help="a user id the checkpoint knows (default: the "
        "personalised user, else each FitRec workout's own user, else the mean embedding)",
    )
    parser.add_argument(
        "--gender",
        choices=GENDERS,
        default=None,
        help="for recordings (default: the personalised athlete's, else unknown)",
    )
    parser.add_argument("--sport", default=None, type=sport_name, metavar="NAME", help=SPORT_HELP)
    flag(
        parser,
        "warm_start_min",
        type=float,
        default=None,
        metavar="K",
        help="live prediction: the first K measured minutes correct the rest (CSV column, MAE after minute K)",
    )
    parser.add_argument(
        "--png",
        choices=PNG_CHOICES,
        default="auto",
        help=f"a figure per workout: all, none, or auto (up to {PNG_AUTO_MAX} workouts; default)",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available)")


def run_predict(args) -> int:
    """Predict every file, one line each and a summary; 0 when anything was predicted.

    Nothing predicted raises a DataError (the CLI prints it and exits 2): for a single file its own reason."""
    started = time.perf_counter()
    if args.warm_start_min is not None and not (0 <= args.warm_start_min <= MAX_WARM_START_MIN):  # NaN fails too
        raise HRLSTMError(
            f"--warm-start-min {args.warm_start_min:g}: minutes from 0 to {MAX_WARM_START_MIN:g} (the first K "
            "measured minutes correct the rest)"
        )
    check_writable(Path(args.out))  # before reading and predicting, not after
    args.checkpoint = checkpoint_or_bundled(args.checkpoint, say)
    preds, data = predict_files(
        args.checkpoint,
        args.files,
        args.out,
        args.user,
        args.gender,
        args.device,
        sport=args.sport,
        warm_start_min=args.warm_start_min,
        png=getattr(args, "png", "auto"),
    )
    if not preds and len(data.skipped) == 1:
        raise DataError(data.skipped[0][1])
    maes = [p.mae for p in preds if p.mae is not None]
    mean = f"; mean MAE {np.mean(maes):.1f} BPM over {len(maes)} with measured heart rate" if maes else ""
    print(
        f"Predicted {len(preds)} workout{'' if len(preds) == 1 else 's'} from {data.n_files - len(data.skipped)} "
        f"of {data.n_files} files ({len(data.skipped)} skipped){mean} in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    for path, reason in data.skipped:
        print(f"  skipped {reason if path.name in reason else f'{path}: {reason}'}", flush=True)
    if not preds:
        raise DataError(f"nothing predicted: all {len(data.skipped)} files were skipped (reasons above)")
    figures = any(p.png_path for p in preds)
    print(f"Wrote {'CSV and PNG' if figures else 'CSV'} to {args.out}", flush=True)
    return 0


def add_personalize_arguments(parser) -> None:
    """Arguments of `hr-lstm personalize --checkpoint PATH --workouts FILE... --out PATH [--user NAME]`."""
    d = PersonalizeConfig()
    parser.add_argument(
        "--checkpoint", default=None, metavar="PATH", help="an lstm_embeddings checkpoint (default: the bundled model)"
    )
    parser.add_argument(
        "--workouts",
        required=True,
        nargs="+",
        metavar="FILE",
        help="the athlete's FIT/GPX/TCX/CSV recordings or FitRec file, folders of them or a bulk export folder "
        "(activities.csv names each file's sport); the latest is held out",
    )
    parser.add_argument("--out", required=True, metavar="PATH", help="personalised checkpoint to write (.pt)")
    parser.add_argument("--user", default="me", metavar="NAME", help="the new athlete's id (default: me)")
    parser.add_argument("--gender", choices=GENDERS, default="unknown", help="for recordings (default unknown)")
    parser.add_argument(
        "--steps", type=int, default=d.steps, help=f"most optimiser steps on the embedding row (default {d.steps})"
    )
    parser.add_argument(
        "--lr", type=float, default=d.lr, help=f"Adam learning rate of the embedding row (default {d.lr})"
    )
    parser.add_argument(
        "--l2",
        type=float,
        default=d.l2_toward_mean,
        help=f"pull toward the mean embedding (default {d.l2_toward_mean})",
    )
    parser.add_argument(
        "--rung",
        choices=RUNG_CHOICES,
        default=d.rung,
        help="what to fit: the embedding row alone, plus the output head and last LSTM layer, every weight, "
        "or the average of those two fits (blend); auto: the blend, unless the embedding alone scores lower on "
        f"the latest ~{d.selection_fraction:.0%}% of the workouts before the held-out one (embedding alone "
        f"with fewer than {d.min_ladder_workouts}) (default {d.rung})",
    )
    parser.add_argument(
        "--max-workouts",
        type=int,
        default=d.max_train_workouts,
        help=f"fit at most the latest N workouts (default {d.max_train_workouts}; the rest are said and left out)",
    )
    parser.add_argument("--sport", default=None, type=sport_name, metavar="NAME", help=SPORT_HELP)
    parser.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help=f"seed of every random choice of the fit (default {d.seed}): the same files, checkpoint, seed and "
        "machine give the same model",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available)")


def run_personalize(args) -> int:
    """Personalise and print before/after; 0 on success (errors raise HRLSTMError: exit 2)."""
    if getattr(args, "max_workouts", 1) < 1:
        raise HRLSTMError(f"--max-workouts {args.max_workouts}: must be at least 1")
    if args.steps < 1 or not (0 < args.lr < float("inf")) or not (0 <= args.l2 < float("inf")):  # NaN fails too
        raise HRLSTMError("--steps must be at least 1, --lr positive and --l2 not negative (finite numbers)")
    config = PersonalizeConfig(
        steps=args.steps,
        lr=args.lr,
        l2_toward_mean=args.l2,
        rung=args.rung,
        seed=getattr(args, "seed", 0),
        max_train_workouts=getattr(args, "max_workouts", PersonalizeConfig.max_train_workouts),
    )
    args.checkpoint = checkpoint_or_bundled(args.checkpoint, say)
    out = Path(args.out)
    if out.is_dir():
        raise HRLSTMError(f"--out {out}: is a folder; give the checkpoint's file name (e.g. {out / 'me.pt'})")
    if out.exists() and out.resolve() == Path(args.checkpoint).resolve():
        raise HRLSTMError(f"--out {out}: is the --checkpoint itself; write the personalised model to another file")
    check_writable(out.parent)  # before the fit, not after it
    with output_lock(
        out, "another personalize (pid {pid}) is writing this checkpoint; wait for it or choose another --out"
    ):
        result = personalize(
            args.checkpoint, args.workouts, args.out, args.user, args.gender, config, args.device, sport=args.sport
        )
    n_used = len(result.train_workouts) + (result.held_out is not None)
    held_out = (
        f"held-out MAE {result.mae_before:.1f} -> {result.mae_after:.1f} BPM"
        if result.held_out is not None
        else "no held-out workout"
    )
    capped = f", {result.left_out_by_cap} earliest left out by the cap" if result.left_out_by_cap else ""
    print(
        f"Personalised '{result.user}' from {n_used} workouts ({len(result.skipped)} skipped{capped}), rung "
        f"'{result.rung}': {held_out}; fit {result.fit_seconds:.1f} s, {result.total_seconds:.1f} s in all "
        f"(seed {config.seed})",
        flush=True,
    )
    return 0
