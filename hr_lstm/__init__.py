"""hr_lstm: predict heart rate during a workout from speed and altitude."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hr_lstm")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
