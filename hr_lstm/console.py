"""Output that survives `nohup` and papermill logs: every line flushed at once."""

import sys


def say(*args) -> None:
    print(*args, flush=True, file=sys.stdout)


def attached_to_terminal() -> bool:
    return sys.stderr.isatty()
