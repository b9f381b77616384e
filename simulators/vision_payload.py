"""The machine-vision result message: one JSON object per inspected part at one station.

    {"serial": "line2-000123", "station": "line2.vision",
     "time": "2026-11-22T19:00:00.123456Z",
     "features": {"gap_mm": 1.503, "offset_mm": 0.01},
     "verdict": "OK", "defects": [], "inspection": "first"}

Each characteristic's value is written at its configured ``source.mqtt.field`` path
(``features.gap_mm`` -> ``payload["features"]["gap_mm"]``) and the verdict at the
inspection's field path. The verdict is NOK when any feature is outside its spec limits;
``defects`` lists those features by the last component of their field path.
``inspection`` is ``first`` or, after rework, ``reinspection``. A feature the station did
not judge (its value lost, or of bad quality) is left out of the message and its verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from simulators.plant import SimCharacteristic, SimInspection
from simulators.scenario import PartReadings, utc_iso

RESERVED_KEYS = frozenset({"serial", "station", "time", "defects", "inspection"})


def build_payload(
    inspection: SimInspection,
    characteristics: Sequence[SimCharacteristic],
    values: Mapping[str, float],
    part: int | str,
    at: datetime,
    *,
    reinspection: bool = False,
) -> dict[str, Any]:
    """Return the result message for one part at one station (pure function).

    `values` holds the judged features by characteristic id: the station's characteristics
    missing from it are left out. `part` is the serial, or a part index that becomes
    ``<line>-<index:06d>``.
    """
    serial = part if isinstance(part, str) else f"{inspection.line}-{part:06d}"
    payload: dict[str, Any] = {
        "serial": serial,
        "station": inspection.station,
        "time": utc_iso(at),
        "features": {},
    }
    defects: list[str] = []
    for char in characteristics:
        assert char.mqtt_field is not None
        assert char.feature_key is not None
        value = values.get(char.id)
        if value is None:
            continue
        set_path(payload, char.mqtt_field, value)
        if char.is_out_of_spec(value):
            defects.append(char.feature_key)
    set_path(payload, inspection.field, "NOK" if defects else "OK")
    payload["defects"] = defects
    payload["inspection"] = "reinspection" if reinspection else "first"
    return payload


def judged_values(
    characteristics: Sequence[SimCharacteristic], readings: PartReadings
) -> dict[str, float]:
    """The values of `characteristics` a station can judge: delivered, of good quality."""
    skipped = readings.lost | readings.bad
    return {c.id: readings.values[c.id] for c in characteristics if c.id not in skipped}


def set_path(payload: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``payload[a][b]...`` for the dotted path ``a.b...``, creating the parents."""
    *parents, leaf = dotted.split(".")
    node = payload
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def check_payload_paths(
    stations: Iterable[tuple[SimInspection, tuple[SimCharacteristic, ...]]],
) -> None:
    """Refuse field paths that would overwrite the message's own keys or each other."""
    for inspection, chars in stations:
        paths = [c.mqtt_field for c in chars if c.mqtt_field is not None] + [inspection.field]
        for path in paths:
            if path.split(".", 1)[0] in RESERVED_KEYS:
                raise ValueError(
                    f"topic {inspection.topic}: field {path!r} collides with the "
                    f"message's own keys {sorted(RESERVED_KEYS)}"
                )
        if len(set(paths)) != len(paths):
            raise ValueError(f"topic {inspection.topic}: two fields share a path: {paths}")
