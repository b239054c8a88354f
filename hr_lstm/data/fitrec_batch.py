"""Many FitRec records at once: the conversion the parallel reader (`ingest`) runs.

`records_to_series` gives exactly what `fitrec.record_to_series` gives record by record
(same numbers, same first error), a block at a time: one numpy conversion per key for the
block instead of per record. `parse_fast` reads a line's numeric lists straight into float64
buffers with simdjson when it is installed (no Python float per value: ~3x faster than orjson
plus numpy); anything unusual goes the careful way, which names the problem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import chain

import numpy as np

from ..errors import DataError
from .fitrec import (
    CHANNELS,
    FITREC_KEYS,
    NUMERIC_KEYS,
    REQUIRED_KEYS,
    ParseConfig,
    RecordMeta,
    parse_line,
    record_meta,
    record_to_series,
    series_block,
    strip_bom,
)

try:  # optional accelerator
    import simdjson
except ImportError:  # pragma: no cover - then orjson does it all
    simdjson = None
if os.environ.get("HR_LSTM_NO_ACCELERATORS"):  # to measure or test the orjson path alone
    simdjson = None


def _usual_shape(record: dict, cfg: ParseConfig) -> tuple[tuple[str, ...], int] | None:
    """(numeric keys, length) when the record can join a block; None sends it the careful way."""
    if not all(k in record for k in REQUIRED_KEYS) or record.get("altitude") is None:
        return None  # missing keys, or no altitude: the careful path says so or handles it
    keys = NUMERIC_KEYS.get((record.get("speed") is not None, "latitude" in record and "longitude" in record))
    timestamps = record["timestamp"]
    if keys is None or type(timestamps) is not list or len(timestamps) < cfg.min_points:
        return None
    n = len(timestamps)
    if any(type(record[k]) is not list or len(record[k]) != n for k in keys):
        return None
    return keys, n


@dataclass
class ParsedRecord:
    """A record the fast parser already read into arrays; `text` serves the careful path."""

    text: bytes
    columns: dict[str, np.ndarray]  # NUMERIC_KEYS -> 1-D float64 of one length
    fields: dict  # id, userId, sport, gender as read (scalars)


_FIELD_TYPES = (str, int, float, bool, type(None))
_FITREC_KEYS = set(FITREC_KEYS)


def fast_parser():
    """A simdjson parser for `parse_fast` (one per thread: it is reused and not shareable), or None."""
    return simdjson.Parser() if simdjson is not None else None


def parse_fast(line: bytes, parser, cfg: ParseConfig) -> ParsedRecord | None:
    """One line -> arrays without a Python float per value; None for anything unusual.

    None sends the line down the orjson / literal path, which gives the same numbers and names
    any problem: a missing key, null, strings, nested lists, an apostrophe in a string (the
    quote swap then breaks the JSON), a number out of range, an odd length.
    """
    line = strip_bom(line)  # a file's first line may carry a UTF-8 byte-order mark
    text = line.replace(b"'", b'"') if line[1:2] == b"'" else line
    try:
        doc = parser.parse(text)
        keys = NUMERIC_KEYS.get((doc.get("speed") is not None, "latitude" in doc and "longitude" in doc))
        if keys is None or not all(k in doc for k in REQUIRED_KEYS):
            return None
        fields = {k: doc.get(k) for k in ("id", "userId", "sport", "gender", "url")}
        columns = {k: np.frombuffer(doc[k].as_buffer(of_type="d"), np.float64) for k in keys}
        # as_buffer flattens nested lists: accept the record only if every '[' in the line opens
        # one of its top-level lists (a '[' inside a string only sends it the slow way). With
        # FitRec's keys only, the lists are exactly `keys`; anything else is counted.
        names = doc.keys()
        if set(names) <= _FITREC_KEYS and ("latitude" in doc) == ("longitude" in doc):
            n_lists = len(keys)
        else:
            n_lists = sum(type(doc[k]) is simdjson.Array for k in names)
    except (ValueError, TypeError, KeyError, RuntimeError, AttributeError):
        return None
    finally:
        doc = None  # the parser refuses to parse again while views into the last document live
    n = len(columns["timestamp"])
    if (
        n < cfg.min_points
        or any(len(c) != n for c in columns.values())
        or not all(type(v) in _FIELD_TYPES for v in fields.values())
        or np.count_nonzero(np.frombuffer(line, np.uint8) == ord("[")) != n_lists
    ):
        return None
    return ParsedRecord(line, columns, fields)


def _shape(record, cfg: ParseConfig) -> tuple | None:
    if isinstance(record, ParsedRecord):
        return tuple(record.columns), len(record.columns["timestamp"]), True
    shape = _usual_shape(record, cfg)
    return shape and (*shape, False)


def _block(records, index: list[int], key: str, n: int, prepared: bool) -> np.ndarray:
    if prepared:
        return np.stack([records[i][2].columns[key] for i in index])
    # fromiter over the chained lists: one pass, no shape discovery (~15% faster than np.array)
    return np.fromiter(chain.from_iterable([records[i][2][key] for i in index]), np.float64, len(index) * n).reshape(
        -1, n
    )


def records_to_series(
    records: list[tuple[str, int, dict | ParsedRecord]], cfg: ParseConfig, skip_bad: bool = False
) -> tuple[np.ndarray, list[RecordMeta], list[tuple[int, str]]]:
    """Many (where, line, record) -> (kept, seq_len, channels) float32, their metadata, skipped.

    Records of the usual shape are converted a block at a time (one numpy conversion per key
    for the block: most of the cost of a record). A block that fails to convert, or a record with
    non-finite values, goes through `record_to_series`, which names the problem; so the results
    and the first error are those of converting the records one by one, in order. Skipped
    records (skip_bad) come back as (line, message).
    """
    groups: dict[tuple, list[int]] = {}
    careful: list[int] = []
    for i, (_, _, record) in enumerate(records):
        shape = _shape(record, cfg)
        (groups.setdefault(shape, []) if shape else careful).append(i)
    out = np.empty((len(records), cfg.seq_len, len(CHANNELS)), np.float32)
    metas: list[RecordMeta | None] = [None] * len(records)
    for (keys, n, prepared), index in groups.items():
        try:
            columns = {k: _block(records, index, k, n, prepared) for k in keys}
        except (TypeError, ValueError, OverflowError):  # a string, a nested list: the careful path says so
            careful += index
            continue
        # JSON has no NaN or infinity (simdjson refuses 1e400), so only lists from dicts are checked.
        finite = (
            np.ones(len(index), bool)
            if prepared
            else np.logical_and.reduce([np.isfinite(c).all(axis=1) for c in columns.values()])
        )
        if not finite.all():  # None (read as NaN) or NaN somewhere: the careful path names it
            careful += [i for i, ok in zip(index, finite) if not ok]
            index = [i for i, ok in zip(index, finite) if ok]
            columns = {k: c[finite] for k, c in columns.items()}
            if not index:
                continue
        out[index] = series_block(columns, cfg)
        has_speed = "speed" in columns
        for i, start in zip(index, columns["timestamp"][:, 0].tolist()):
            record = records[i][2]
            metas[i] = record_meta(record.fields if prepared else record, int(start), has_speed, records[i][1])
    skipped = []
    for i in sorted(careful):
        where, line, record = records[i]
        try:
            if isinstance(record, ParsedRecord):
                record = parse_line(record.text, where)
            out[i], metas[i] = record_to_series(record, where, line, cfg)
        except DataError as exc:
            if not skip_bad:
                raise
            skipped.append((line, str(exc)))
    kept = [i for i, m in enumerate(metas) if m is not None]
    series = out if len(kept) == len(records) else out[kept]
    return series, [metas[i] for i in kept], skipped
