"""The `hr-lstm` command: one parser, one small module of commands per layer.

Every user-facing failure is an `HRLSTMError`: one line on stderr naming the
file and the problem, exit status 2, no traceback. Only the module of the
command being run is imported: the top-level parser lists the commands from
`COMMANDS` alone, so `hr-lstm --help`, `--version` and `hr-lstm ingest` do not
pay for torch.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from .. import __version__
from ..errors import HRLSTMError

# name -> (help, module under hr_lstm.cli holding add_<name>_arguments and run_<name>)
COMMANDS = {
    "synth": ("write a simulated FitRec-format data set (+ noise-free sidecar)", "data"),
    "ingest": ("parse a FitRec-format file into the array cache (parallel)", "data"),
    "train": ("train a model; writes checkpoint, curves and metrics", "training"),
    "calibrate": (
        "calibrate the prediction band and warm start of a checkpoint on its validation split again (older checkpoints)",
        "training",
    ),
    "evaluate": ("metrics of a saved checkpoint", "evaluation"),
    "baselines": ("mean, per-user, linear and physiological baselines on the same split", "evaluation"),
    "import": ("FIT/GPX/TCX recordings -> FitRec-format workouts", "data"),
    "predict": ("predicted vs measured heart rate for recordings (CSV + PNG)", "inference"),
    "personalize": (
        "fit a model to a new athlete from their own workouts (embedding, head, all, or a blend)",
        "inference",
    ),
    "plan": ("the heart rate a pace brings on a route, or the fastest pace under a ceiling (CSV + PNG)", "plan"),
    "report": ("run the notebooks headless (papermill) into reports/*.html", "reporting"),
}

EXIT_STATUS_EPILOG = (
    "exit status: 0 success; 2 a usage error (bad flag or value) or a user, data or file error "
    "(one line on stderr naming the file and the problem); 130 interrupted (Ctrl-C). "
    "Run `hr-lstm COMMAND --help` for a command's flags and their defaults."
)


def _has_default(action: argparse.Action) -> bool:
    """A default worth showing: not absent, not an off switch, not empty."""
    default = action.default
    return not (default is None or default is False or default is argparse.SUPPRESS or default in ((), [], ""))


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default (unless there is none, it is off, or the help already names it)
    and only the dashed spelling of a flag whose original snake_case spelling is also accepted."""

    def _get_help_string(self, action):
        text = action.help or ""
        if not _has_default(action) or "default" in text.lower():
            return text
        return super()._get_help_string(action)

    def _expand_help(self, action):
        if isinstance(action.default, (tuple, list)) and action.default:  # (30.0, 60.0) -> 30.0,60.0
            shown = argparse.Namespace(**vars(action))
            shown.default = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in action.default)
            return super()._expand_help(shown)
        return super()._expand_help(action)

    def _format_action_invocation(self, action):
        shown = [s for s in action.option_strings if "_" not in s or s.replace("_", "-") not in action.option_strings]
        if shown == action.option_strings:
            return super()._format_action_invocation(action)
        hidden = action.option_strings
        try:
            action.option_strings = shown
            return super()._format_action_invocation(action)
        finally:
            action.option_strings = hidden


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser whose arguments are added (and module imported) only when it is used."""

    command: str | None = None

    def load(self) -> CommandParser:
        if self.command is not None:
            name, self.command = self.command, None
            module = importlib.import_module(f".{COMMANDS[name][1]}", __name__)
            getattr(module, f"add_{name}_arguments")(self)
            self.set_defaults(func=getattr(module, f"run_{name}"))
            for action in self._actions:  # a flag with no help text still shows its default
                if action.help is None and _has_default(action):
                    action.help = "(default: %(default)s)"
        return self

    def parse_known_args(self, args=None, namespace=None):
        self.load()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self.load()
        return super().format_help()

    def format_usage(self) -> str:
        self.load()
        return super().format_usage()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser. The commands are listed from `COMMANDS`; a command's module is imported (and its
    arguments added) only when that command is parsed or its help shown, or at once when it is `only`."""
    parser = argparse.ArgumentParser(
        prog="hr-lstm",
        description="Heart-rate prediction from speed and altitude with LSTMs.",
        epilog=EXIT_STATUS_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"hr_lstm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    for name, (help_text, _module_name) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        p.command = name
        if name == only:
            p.load()
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["hr-lstm", *argv])  # what `train` records in its checkpoint
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
