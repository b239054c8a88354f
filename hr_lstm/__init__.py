"""hr_lstm: predict heart rate during a workout from speed and altitude.

The package reads as the data flows (docs/architecture.md):

    data -> models -> training -> evaluation / inference -> reporting -> cli

and beside them the few modules every layer uses: `errors`, `console`, `paths`, `metrics`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hr_lstm")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
