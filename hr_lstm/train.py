"""`python -m hr_lstm.train`: the original project's entry point, kept so its commands still work.

The same as `hr-lstm train` (hr_lstm.cli); the training code itself lives in `hr_lstm.training`.
"""

import sys

from .cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
