"""Read FitRec / Endomondo workout files, one record at a time.

The public file (Ni et al., WWW 2019) stores one workout per line as a Python
dict literal (single quotes); other copies are JSON lines or one JSON array.
All of them, plain or gzipped, stream through `iter_records`, and
`record_to_series` turns one record into a float32 (seq_len, channels) array
(`fitrec_batch` does many at once, faster, with the same results). Nothing here
ever calls `eval`: the fast path swaps quotes and uses orjson, and the rare line
that defeats it (an apostrophe inside a string) falls back to `ast.literal_eval`,
which accepts literals only.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import orjson

from ..errors import DataError

# Channels of the cached array, in order. Speed is the device's where the
# record has it, else derived from positions; the derived one is kept too.
CHANNELS = ("time_s", "speed_kmh", "derived_speed_kmh", "altitude_m", "heart_rate_bpm")
# Every key of a FitRec record (the public file's, and what `hr-lstm import` writes).
FITREC_KEYS = (
    "altitude",
    "gender",
    "heart_rate",
    "id",
    "latitude",
    "longitude",
    "speed",
    "sport",
    "timestamp",
    "url",
    "userId",
)
REQUIRED_KEYS = ("heart_rate", "timestamp", "userId", "id")
# A record without 'altitude' (a recording that has none) gets a NaN altitude channel: unknown,
# which the features treat as missing, never as sea level.
# The numeric lists a record is converted from, by (has device speed, has positions).
NUMERIC_KEYS = {
    (True, True): ("timestamp", "altitude", "heart_rate", "speed", "latitude", "longitude"),
    (True, False): ("timestamp", "altitude", "heart_rate", "speed"),
    (False, True): ("timestamp", "altitude", "heart_rate", "latitude", "longitude"),
}
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class ParseConfig:
    seq_len: int = 500  # FitRec's length; other lengths are resampled onto it
    speed_max_kmh: float = 100.0  # faster than any run or ride: a GPS jump or a device's "no value" sentinel
    min_points: int = 10  # fewer samples than this cannot be a workout


@dataclass
class RecordMeta:
    id: str
    user_id: str
    sport: str
    gender: str
    start_time: int
    has_device_speed: bool
    line: int


def open_text(path: Path) -> io.TextIOBase:
    """Open a plain or gzipped text file, with errors that name the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a workout file")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if not magic:
        raise DataError(f"{path}: file is empty")
    raw = gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig")  # -sig: a leading byte-order mark is dropped


def parse_line(line: str | bytes, where: str) -> dict:
    """One line (text, or the file's raw UTF-8 bytes) -> record dict."""
    line = strip_bom(line)
    # Python literals swap cleanly to JSON unless a string holds an apostrophe.
    quote = "'" if isinstance(line, str) else b"'"
    swapped = line.replace(quote, '"' if isinstance(line, str) else b'"')
    candidates = (swapped, line) if line[1:2] == quote else (line, swapped)
    for text in candidates:
        try:
            record = orjson.loads(text)
            break
        except orjson.JSONDecodeError:
            continue
    else:
        try:
            text = line if isinstance(line, str) else line.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{where}: not a text workout file (binary content)") from None
        try:
            record = ast.literal_eval(text)  # literals only; never eval
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            reason = isinstance(exc, ValueError) and _not_a_literal(text)  # NaN, Infinity: name the key
            raise DataError(f"{where}: {reason or f'malformed record, not a dict literal or JSON ({msg})'}") from None
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a workout record (dict), got {type(record).__name__}")
    return record


BOM = "\ufeff"


def strip_bom(line: str | bytes) -> str | bytes:
    """Drop a UTF-8 byte-order mark (an editor's, at the start of a file) from a line."""
    if isinstance(line, str):
        return line[1:] if line.startswith(BOM) else line
    return line[3:] if line.startswith(b"\xef\xbb\xbf") else line


def _not_a_literal(text: str) -> str | None:
    """What ast.literal_eval refused, in words: the key whose value is a name (NaN, Infinity, ...)."""
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not isinstance(tree, ast.Dict):
        return None
    for key, value in zip(tree.keys, tree.values):
        names = [n.id for n in ast.walk(value) if isinstance(n, ast.Name)]
        if names:
            shown = repr(key.value) if isinstance(key, ast.Constant) else "a key"
            return (
                f"{shown} holds a non-numeric value ({names[0]}): NaN/Infinity are not allowed; "
                "replace them with numbers, or remove this record"
            )
    return None


def _iter_json_array(fh: io.TextIOBase, path: Path) -> Iterator[tuple[str, dict]]:
    """Stream the elements of a top-level JSON array without loading the file."""
    decoder = json.JSONDecoder()
    buf, pos, eof, index, opened = "", 0, False, 0, False
    while True:
        if not eof and len(buf) - pos < (1 << 20):  # keep a whole record ahead
            more = fh.read(1 << 20)
            eof, buf, pos = not more, buf[pos:] + more, 0
        while pos < len(buf) and buf[pos] in " \t\r\n,[" and (opened or buf[pos] != ","):
            opened = opened or buf[pos] == "["
            pos += 1
        if pos >= len(buf):
            if eof:
                raise DataError(f"{path}: JSON array is not closed (file truncated?)")
            continue
        if buf[pos] == "]":
            return
        try:
            record, end = decoder.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            if not eof:  # a record longer than the buffer: read on
                more = fh.read(1 << 20)
                eof, buf, pos = not more, buf[pos:] + more, 0
                continue
            raise DataError(f"{path}: record {index + 1}: malformed JSON ({exc.msg})") from None
        index += 1
        if not isinstance(record, dict):
            raise DataError(f"{path}: record {index}: expected a workout record (dict)")
        yield f"{path}: record {index}", record
        pos = end


def sniff_format(path: Path) -> str:
    """'lines' (one record per line) or 'array' (one JSON array); a DataError for anything else."""
    try:
        with open_text(path) as fh:
            stripped = fh.read(1 << 12).lstrip()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: truncated or corrupt gzip data ({exc})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text workout file (binary content)") from None
    if not stripped:
        raise DataError(f"{path}: file has no records")
    if stripped[0] not in "[{":
        shown = stripped[:20].splitlines()[0]
        raise DataError(
            f"{path}: not a FitRec workout file (expected one record per line or a "
            f"JSON array; it starts with {shown!r})"
        )
    return "array" if stripped[0] == "[" else "lines"


def iter_records(path: Path) -> Iterator[tuple[str, int, dict]]:
    """Yield (where, line_or_record_number, record) for every workout in the file.

    `where` reads "file: line N" (or "record N" in a JSON array) so every later
    error names the record.
    """
    path = Path(path)
    kind = sniff_format(path)
    try:
        with open_text(path) as fh:
            if kind == "array":
                for n, (where, record) in enumerate(_iter_json_array(fh, path), start=1):
                    yield where, n, record
                return
            for number, line in enumerate(fh, start=1):
                line = line.strip()
                if line:
                    where = f"{path}: line {number}"
                    yield where, number, parse_line(line, where)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: truncated or corrupt gzip data ({exc})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text workout file (binary content)") from None


def haversine_m(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Distance in metres between consecutive points along the last axis (length n-1)."""
    lat_r, lon_r = np.radians(lat), np.radians(lon)
    dlat, dlon = np.diff(lat_r, axis=-1), np.diff(lon_r, axis=-1)
    cos_lat = np.cos(lat_r)
    a = np.sin(dlat / 2) ** 2 + cos_lat[..., :-1] * cos_lat[..., 1:] * np.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def derive_speed_kmh(time_s: np.ndarray, lat: np.ndarray, lon: np.ndarray, speed_max_kmh: float) -> np.ndarray:
    """Speed from haversine distance over the time step; the first point copies the second.

    Works along the last axis, so one call converts a whole block of workouts (one per row).
    """
    dist_m = haversine_m(lat, lon)
    dt = np.diff(time_s, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(dt > 0, dist_m / dt * 3.6, np.nan)
    speed = np.empty(np.shape(time_s))
    speed[..., 1:] = step
    speed[..., 0] = step[..., 0] if step.shape[-1] else 0.0
    # A repeated timestamp carries the previous speed rather than dividing by zero (0 before any).
    return np.clip(forward_fill(speed), 0.0, speed_max_kmh)


def forward_fill(x: np.ndarray) -> np.ndarray:
    """NaN (and infinite) values take the last finite value before them along the last axis, 0 before
    any: vectorised as "index of the last finite value so far"."""
    finite = np.isfinite(x)
    if finite.all():
        return x
    last = np.maximum.accumulate(np.where(finite, np.arange(x.shape[-1]), 0), axis=-1)
    return np.where(np.take_along_axis(finite, last, -1), np.take_along_axis(x, last, -1), 0.0)


def _numeric(record: dict, key: str, where: str) -> np.ndarray:
    values = record[key]
    if not isinstance(values, list):
        raise DataError(f"{where}: '{key}' should be a list, got {type(values).__name__}")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: '{key}' has non-numeric values") from None
    if arr.ndim != 1:
        raise DataError(f"{where}: '{key}' should be a flat list of numbers")
    bad = np.flatnonzero(~np.isfinite(arr))
    if len(bad):
        raise DataError(f"{where}: '{key}' has {len(bad)} None/NaN values (first at index {bad[0]})")
    return arr


def _resample(arr: np.ndarray, seq_len: int) -> np.ndarray:
    """Rows of any length -> rows of seq_len points (linear interpolation over the index)."""
    n = arr.shape[-1]
    if n == seq_len:
        return arr
    grid, index = np.linspace(0, n - 1, seq_len), np.arange(n)
    return np.stack([np.interp(grid, index, row) for row in arr])


def series_block(columns: dict[str, np.ndarray], cfg: ParseConfig) -> np.ndarray:
    """Equal-length float64 rows, one workout per row -> (rows, seq_len, channels) float32.

    `columns` holds the keys of `NUMERIC_KEYS`: 'speed' only where the device recorded it,
    'latitude'/'longitude' only where positions exist. Single records and whole blocks share
    this code, so both give the same numbers.
    """
    timestamp = columns["timestamp"]
    time_s = timestamp - timestamp[:, :1]
    derived = None
    if "latitude" in columns:
        derived = derive_speed_kmh(time_s, columns["latitude"], columns["longitude"], cfg.speed_max_kmh)
    speed = derived
    if "speed" in columns:  # above speed_max_kmh a device speed is a "no value" sentinel or a glitch: missing,
        device = columns["speed"]  # then the GPS speed there, or the last good one without positions
        missing = np.where(device > cfg.speed_max_kmh, np.nan, np.maximum(device, 0.0))
        speed = forward_fill(missing) if derived is None else np.where(np.isnan(missing), derived, missing)
    derived = speed if derived is None else derived
    out = np.empty((len(timestamp), cfg.seq_len, len(CHANNELS)), np.float32)
    altitude = columns.get("altitude")
    altitude = np.full_like(time_s, np.nan) if altitude is None else altitude
    with np.errstate(over="ignore"):  # beyond float32: inf, which the plausibility checks make missing
        for c, column in enumerate((time_s, speed, derived, altitude, columns["heart_rate"])):
            out[:, :, c] = _resample(column, cfg.seq_len)
    return out


def record_meta(record: dict, start_time: int, has_speed: bool, line: int) -> RecordMeta:
    return RecordMeta(
        id=str(record["id"]),
        user_id=str(record["userId"]),
        sport=str(record.get("sport") or "unknown"),
        gender=str(record.get("gender") or "unknown").lower(),
        start_time=start_time,
        has_device_speed=has_speed,
        line=line,
    )


def record_to_series(record: dict, where: str, line: int, cfg: ParseConfig) -> tuple[np.ndarray, RecordMeta]:
    """One record -> (seq_len, len(CHANNELS)) float32 array and its metadata."""
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise DataError(f"{where}: missing key(s) {', '.join(repr(k) for k in missing)}")
    has_speed = "speed" in record and record["speed"] is not None
    has_position = "latitude" in record and "longitude" in record
    if not has_speed and not has_position:
        raise DataError(f"{where}: no 'speed' and no 'latitude'/'longitude' to derive it from")

    keys = NUMERIC_KEYS[has_speed, has_position]
    if record.get("altitude") is None:  # absent altitude: a NaN channel (series_block)
        keys = tuple(k for k in keys if k != "altitude")
    arrays = {k: _numeric(record, k, where) for k in keys}
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        shown = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise DataError(f"{where}: lists have unequal lengths ({shown})")
    n = lengths["timestamp"]
    if n < cfg.min_points:
        raise DataError(f"{where}: only {n} points, need at least {cfg.min_points}")
    series = series_block({k: v[None, :] for k, v in arrays.items()}, cfg)[0]
    return series, record_meta(record, int(arrays["timestamp"][0]), has_speed, line)
