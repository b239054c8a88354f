"""Errors the command line turns into one clean line and a non-zero exit.

Anything raised as an `HRLSTMError` is a user-facing problem (bad file, bad
flag, bad checkpoint); its message must name the file (and line or record) and
say what is wrong. Anything else is a bug and keeps its traceback.
"""


class HRLSTMError(Exception):
    """A problem with the user's input, reported without a traceback."""


class DataError(HRLSTMError):
    """A data file that cannot be read as workouts."""


class CheckpointError(HRLSTMError):
    """A checkpoint that is missing, corrupt, or not written by hr_lstm."""
