"""The `hr-lstm` command: one parser, one small module of commands per layer.

Every user-facing failure is an `HRLSTMError`: one line on stderr naming the
file and the problem, exit status 2, no traceback. Only the module of the
command being run is imported (`hr-lstm ingest` does not pay for torch).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import HRLSTMError

# name -> (help, module under hr_lstm.cli holding add_<name>_arguments and run_<name>)
COMMANDS = {
    "synth": ("write a simulated FitRec-format data set (+ noise-free sidecar)", "data"),
    "ingest": ("parse a FitRec-format file into the array cache (parallel)", "data"),
    "train": ("train a model; writes checkpoint, curves and metrics", "training"),
    "evaluate": ("metrics of a saved checkpoint", "evaluation"),
    "baselines": ("mean, per-user, linear and physiological baselines on the same split", "evaluation"),
    "import": ("FIT/GPX/TCX recordings -> FitRec-format workouts", "data"),
    "predict": ("predicted vs measured heart rate for recordings (CSV + PNG)", "inference"),
    "personalize": ("fit a model to a new athlete from their own workouts (embedding, head or all)", "inference"),
    "report": ("run the notebooks headless (papermill) into reports/*.html", "reporting"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or with `only` (a command name) that command's arguments alone: the
    other commands are listed but their modules are not imported."""
    parser = argparse.ArgumentParser(
        prog="hr-lstm", description="Heart-rate prediction from speed and altitude with LSTMs."
    )
    parser.add_argument("--version", action="version", version=f"hr_lstm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, module_name) in COMMANDS.items():
        if only in COMMANDS and name != only:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(f".{module_name}", __name__)
        p = sub.add_parser(name, help=help_text, description=help_text)
        getattr(module, f"add_{name}_arguments")(p)
        p.set_defaults(func=getattr(module, f"run_{name}"))
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
