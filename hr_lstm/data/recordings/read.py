"""`read_recording`: one FIT, GPX, TCX or CSV-stream file (gzipped too) into a `Recording`.

The file's format is recognised by its content, not its name (a FIT header, else a
TrainingCenterDatabase or gpx root element near the start, else a CSV header naming a time and a
heart-rate column), and the bytes go to that format's reader (`fit`, `gpx`, `tcx`, `streams`); its rows
become the samples table and the hash of the file's bytes the default workout id. A missing, unreadable or unrecognised file raises
`DataError` naming it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import struct
import zlib
from pathlib import Path

from ...errors import DataError
from .fit import read_fit
from .gpx import read_gpx
from .samples import Recording, samples_frame
from .streams import looks_like_csv, read_csv_stream
from .tcx import read_tcx

# What decoders raise on bytes they were never meant to see: caught here so a damaged file is one line naming it.
DECODER_ERRORS = (ValueError, TypeError, KeyError, IndexError, AssertionError, OverflowError, struct.error, zlib.error)


def read_recording(path: str | os.PathLike) -> Recording:
    """Read a FIT, GPX, TCX or CSV-stream file (gzipped too), recognised by its content."""
    path = Path(path)
    if not path.exists() or path.is_dir():
        if path.is_symlink():
            raise DataError(f"{path}: a symbolic link that leads to no file (a broken link, or a loop)")
        raise DataError(f"{path}: " + ("is a directory, not a recording" if path.exists() else "no such file"))
    try:
        data = raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path.name}: cannot read ({exc.strerror or exc})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise DataError(f"{path.name}: corrupt or truncated gzip file ({' '.join(str(exc).split())})") from None
    if data[:3] == b"\xef\xbb\xbf":  # a UTF-8 byte-order mark before the XML: drop it
        data = data[3:]
    elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 (some Windows tools save XML so): as UTF-8 from here
        try:
            data = data.decode("utf-16").encode("utf-8")
            data = re.sub(rb"""(<\?xml[^>]*encoding=["'])utf-16(["'])""", rb"\1utf-8\2", data, count=1, flags=re.I)
        except UnicodeDecodeError:
            raise DataError(f"{path.name}: damaged UTF-16 text (it starts with a UTF-16 mark)") from None
    head = data[:4096].decode("utf-8", "ignore").lower()
    if data[8:12] == b".FIT":
        fmt, reader = "fit", read_fit
    elif re.search(r"<(\w+:)?trainingcenterdatabase\b", head):
        fmt, reader = "tcx", read_tcx
    elif re.search(r"<(\w+:)?gpx\b", head):
        fmt, reader = "gpx", read_gpx
    elif looks_like_csv(head):
        fmt, reader = "csv", read_csv_stream
    else:
        raise DataError(f"{path.name}: not a FIT, GPX, TCX or CSV recording (content not recognised)")
    try:
        sport, rows, notes = reader(data, path.name)
        start, samples = samples_frame(rows, path.name)
    except DataError:
        raise
    except DECODER_ERRORS as exc:  # a damaged file deep inside a decoder (fitdecode, gpxpy, lxml, pandas)
        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise DataError(f"{path.name}: damaged {fmt.upper()} file, cannot be read ({detail})") from None
    digest = int.from_bytes(hashlib.sha256(raw).digest()[:8], "big") & (2**53 - 1)
    return Recording(path, fmt, sport, start, samples, digest, notes)
