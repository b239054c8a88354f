"""Read personal FIT / GPX / TCX / CSV-stream recordings and turn them into FitRec-format workout records.

`collect_workout_files` expands folders and bulk exports into files (with the sport an export's
activity table names); `read_recording` gives a file's own samples (a `Recording`); `to_fitrec_record`
cleans them (speed from the device, else from distance, else from positions;
short heart-rate gaps filled; pauses kept as jumps in the time stamps) and
resamples to the FitRec shape; `import_recordings` does a batch and `write_records`
writes the records. The modules: `samples` (the `Recording` and its samples table,
sport names), `fit` / `gpx` / `tcx` (one reader each), `read` (recognise a file and
read it), `streams` (CSV streams), `export` (folders and bulk exports) and `convert` (records, batch
import, writing).
"""

from __future__ import annotations

from ..fitrec import FITREC_KEYS
from .convert import (
    GENDERS,
    MIN_HR_FRACTION,
    MODES,
    ImportedRecording,
    ImportResult,
    build_record,
    import_recordings,
    to_fitrec_record,
    write_records,
)
from .export import WorkoutFiles, collect_workout_files
from .read import read_recording
from .samples import SAMPLE_COLUMNS, Recording, normalise_sport

__all__ = [
    "FITREC_KEYS",
    "GENDERS",
    "MIN_HR_FRACTION",
    "MODES",
    "SAMPLE_COLUMNS",
    "ImportResult",
    "ImportedRecording",
    "Recording",
    "WorkoutFiles",
    "collect_workout_files",
    "build_record",
    "import_recordings",
    "normalise_sport",
    "read_recording",
    "to_fitrec_record",
    "write_records",
]
