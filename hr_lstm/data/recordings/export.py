"""Folders of recordings, and the bulk exports people download from Strava and similar services.

`collect_workout_files` turns what a user names (files and folders, mixed) into the list of files to
read. A folder's recordings are every FIT / GPX / TCX / CSV file in it or below it (gzipped too), in
name order. A folder holding an activity table (`activities.csv`, as Strava's bulk export has) is read
as an export: each row names one activity's file (`Filename`) and its type (`Activity Type`), and that
type is the workout's sport (what the athlete labelled it, which is how a ride recorded as a run gets
its right name); a commute flag makes a ride a transport ride. What the table lists but the folder lacks,
rows without a file (activities typed in by hand) and types no sport name matches are said in `notes` or
`skipped`; recordings in the folder that the table does not list are read as well, with their own sport.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ...errors import DataError
from .samples import normalise_sport

RECORDING_SUFFIXES = tuple(s + gz for s in (".fit", ".gpx", ".tcx", ".csv") for gz in ("", ".gz"))
ACTIVITY_TABLE = "activities.csv"
FILE_COLUMNS = ("filename", "file", "file_name", "path")
TYPE_COLUMNS = ("activity_type", "type", "sport", "activitytype")
TRUE_WORDS = ("true", "1", "yes")


@dataclass
class WorkoutFiles:
    """The files to read, the sport an export's table gives some of them, and what was left out and why."""

    files: list[Path] = field(default_factory=list)
    sports: dict[Path, str] = field(default_factory=dict)  # file -> FitRec sport named by its activity table
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, reason): listed, not readable
    notes: list[str] = field(default_factory=list)  # one line each, for the user


def is_recording_name(path: Path) -> bool:
    return path.name.lower().endswith(RECORDING_SUFFIXES) and path.name != ACTIVITY_TABLE


def collect_workout_files(paths) -> WorkoutFiles:
    """Files as given, folders expanded (an export folder through its activity table), in order, no repeats."""
    out = WorkoutFiles()
    for path in map(Path, paths):
        if not path.is_dir():
            _add(out, path)
        elif (path / ACTIVITY_TABLE).is_file():
            _read_export(path, out)
        else:
            found = _recordings_below(path)
            if not found:
                out.notes.append(f"{path}: no FIT, GPX, TCX or CSV files in this folder")
            for file in found:
                _add(out, file)
    return out


def _add(out: WorkoutFiles, path: Path, sport: str | None = None) -> None:
    if path in out.files:  # named twice (a file and its folder): read once
        return
    out.files.append(path)
    if sport:
        out.sports[path] = sport


def _recordings_below(folder: Path) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / n for n in names if not n.startswith(".") and is_recording_name(Path(n)))
    return sorted(found)


def _column(table: pd.DataFrame, names) -> str | None:
    keys = {str(c).strip().lower().replace(" ", "_"): c for c in table.columns}
    return next((keys[n] for n in names if n in keys), None)


def _read_export(folder: Path, out: WorkoutFiles) -> None:
    table_path = folder / ACTIVITY_TABLE
    try:
        table = pd.read_csv(table_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{table_path}: not a readable activity table ({' '.join(str(exc).split())[:120]})") from None
    file_col, type_col = _column(table, FILE_COLUMNS), _column(table, TYPE_COLUMNS)
    if file_col is None:
        raise DataError(f"{table_path}: no file column ({' or '.join(FILE_COLUMNS)}) to find each activity's file")
    commute_col = _column(table, ("commute",))
    listed, without_file, unknown_types = set(), 0, {}
    for _, row in table.iterrows():
        name = str(row[file_col]).strip()
        if not name:
            without_file += 1
            continue
        path = folder / name
        listed.add(path)
        word = str(row[type_col]).strip() if type_col else ""
        sport = normalise_sport(word) if word else "unknown"
        if word and sport == "unknown":
            unknown_types[word] = unknown_types.get(word, 0) + 1
        if sport == "bike" and commute_col and str(row[commute_col]).strip().lower() in TRUE_WORDS:
            sport = "bike (transport)"
        if not path.is_file():
            out.skipped.append((path, f"{path.name}: listed in {ACTIVITY_TABLE} but not in the folder"))
            continue
        _add(out, path, None if sport == "unknown" else sport)
    n_listed = len(table)
    out.notes.append(
        f"{folder}: an export; {ACTIVITY_TABLE} lists {n_listed} activities"
        + (f", {without_file} without a file (entered by hand) left out" if without_file else "")
    )
    for word, count in sorted(unknown_types.items()):
        out.notes.append(f"{folder}: activity type '{word}' ({count}x) is no sport this tool knows: the file's is used")
    extra = [p for p in _recordings_below(folder) if p not in listed]
    if extra:
        out.notes.append(f"{folder}: {len(extra)} recordings not listed in {ACTIVITY_TABLE} read with their own sport")
    for path in extra:
        _add(out, path)
