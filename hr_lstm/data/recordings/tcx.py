"""The TCX reader (Garmin's Training Center XML, via lxml).

`read_tcx` parses the XML safely (no entity resolution, no network) and turns every
Trackpoint into one sample row: time, position, altitude, heart rate, distance and the
ActivityExtension speed (m/s), in any namespace; the sport is the first Activity's Sport
attribute. Malformed XML or a file without trackpoints raises `DataError`.
"""

from __future__ import annotations

from lxml import etree

from ...errors import DataError
from .samples import normalise_sport, sample_row, to_float


def read_tcx(data: bytes, name: str):
    """TCX bytes -> (sport, sample rows, notes); `name` (the file's) prefixes error messages."""
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    except etree.XMLSyntaxError as exc:
        raise DataError(f"{name}: not a valid TCX file ({exc})") from None
    activity = next(root.iter("{*}Activity"), None)
    rows = []
    for tp in root.iter("{*}Trackpoint"):
        num = lambda path: to_float(tp.findtext(path))  # noqa: E731
        rows.append(
            sample_row(
                (tp.findtext("{*}Time") or "").strip(),
                num("{*}Position/{*}LatitudeDegrees"),
                num("{*}Position/{*}LongitudeDegrees"),
                num("{*}AltitudeMeters"),
                num("{*}HeartRateBpm/{*}Value"),
                num("{*}Extensions/{*}TPX/{*}Speed"),
                num("{*}DistanceMeters"),
            )
        )
    if not rows:
        raise DataError(f"{name}: TCX file has no trackpoints")
    return normalise_sport(activity.get("Sport") if activity is not None else None), rows, []
