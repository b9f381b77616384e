"""The plant as the simulators see it: characteristics, their sources and a capable process.

The simulators read the same YAML file as the service but never import the service: this
module is their own small reader. It only extracts what a fake line needs (ids, spec limits,
source addresses) and derives a nominal value and a sigma that make each process capable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_log = logging.getLogger(__name__)


class PlantConfigError(ValueError):
    """The plant configuration lacks something the simulators need, or has it malformed."""


#: The capability the simulated processes are built to have (Cp = Cpk when centred): the
#: middle of the Assurance band [1.33, 1.67), so a centred in-control process keeps one
#: grade (on a threshold, estimation noise would flip it between two every refresh).
TARGET_CAPABILITY = 1.5


@dataclass(frozen=True)
class SimCharacteristic:
    """One simulated quality characteristic and where it is published."""

    id: str
    line: str
    process: str
    lsl: float | None
    usl: float | None
    target: float | None
    nominal: float
    sigma: float
    opcua_node_id: str | None
    mqtt_topic: str | None
    mqtt_field: str | None
    unit: str | None = None

    @property
    def feature_key(self) -> str | None:
        """The last component of the MQTT field path (``features.gap_mm`` -> ``gap_mm``)."""
        if self.mqtt_field is None:
            return None
        return self.mqtt_field.rsplit(".", 1)[-1]

    def is_out_of_spec(self, value: float) -> bool:
        """Return True when `value` lies outside the specification limits that exist."""
        return (self.lsl is not None and value < self.lsl) or (
            self.usl is not None and value > self.usl
        )


@dataclass(frozen=True)
class SimInspection:
    """A process whose station publishes one verdict message per inspected part."""

    line: str
    process: str
    topic: str
    field: str

    @property
    def station(self) -> str:
        """The station name written into each message, e.g. ``line2.vision``."""
        return f"{self.line}.{self.process}"


@dataclass(frozen=True)
class SimPlant:
    """Everything the simulators read from a plant configuration file."""

    plant_id: str
    characteristics: tuple[SimCharacteristic, ...]
    inspections: tuple[SimInspection, ...]

    def opcua_characteristics(self) -> tuple[SimCharacteristic, ...]:
        """Characteristics read from an OPC UA node, in file order."""
        return tuple(c for c in self.characteristics if c.opcua_node_id is not None)

    def mqtt_characteristics(self) -> tuple[SimCharacteristic, ...]:
        """Characteristics read from an MQTT topic, in file order."""
        return tuple(c for c in self.characteristics if c.mqtt_topic is not None)

    def characteristics_on(self, topic: str) -> tuple[SimCharacteristic, ...]:
        """Characteristics whose values travel in messages on `topic`."""
        return tuple(c for c in self.characteristics if c.mqtt_topic == topic)


def derive_nominal(lsl: float | None, usl: float | None, target: float | None) -> float:
    """Return the process mean to simulate: the target, else the midpoint of two limits.

    Raises ValueError when there is neither a target nor both limits.
    """
    if target is not None:
        return target
    if lsl is not None and usl is not None:
        return (lsl + usl) / 2.0
    raise ValueError("needs a target, or both lsl and usl to take the midpoint")


def derive_sigma(lsl: float | None, usl: float | None, nominal: float) -> float:
    """Return a sigma that makes the process capable (index `TARGET_CAPABILITY`).

    Two-sided: (usl - lsl) / (6 * 1.5); one-sided: |limit - nominal| / (3 * 1.5);
    no limits: 1.0. Raises ValueError when the limits leave no room for variation.
    """
    if lsl is not None and usl is not None:
        if usl <= lsl:
            raise ValueError(f"usl ({usl}) must be greater than lsl ({lsl})")
        return (usl - lsl) / (6.0 * TARGET_CAPABILITY)
    limit = lsl if lsl is not None else usl
    if limit is None:
        return 1.0
    if limit == nominal:
        raise ValueError(f"the only spec limit ({limit}) equals the nominal value")
    return abs(limit - nominal) / (3.0 * TARGET_CAPABILITY)


def load_plant(path: Path | str) -> SimPlant:
    """Read a plant configuration file into a `SimPlant`.

    Raises PlantConfigError (a ValueError) naming the file and the offending entry when
    something needed is missing or malformed, and OSError when the file cannot be read.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        return _parse_plant(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise PlantConfigError(f"{path}: not valid YAML: {exc}") from exc
    except ValueError as exc:
        raise PlantConfigError(f"{path}: {exc}") from exc


def _parse_plant(document: Any) -> SimPlant:
    root = _mapping(document, "the file")
    plant = _mapping(root.get("plant"), "plant")
    plant_id = _text(plant, "id", "plant")
    characteristics: list[SimCharacteristic] = []
    inspections: list[SimInspection] = []
    for li, line_doc in enumerate(_sequence(root.get("lines"), "lines")):
        line_where = f"lines[{li}]"
        line = _mapping(line_doc, line_where)
        line_id = _text(line, "id", line_where)
        for pi, process_doc in enumerate(
            _sequence(line.get("processes"), f"{line_where}.processes")
        ):
            where = f"{line_where}.processes[{pi}]"
            process = _mapping(process_doc, where)
            process_id = _text(process, "id", where)
            inspection = _parse_inspection(process.get("inspection"), line_id, process_id, where)
            if inspection is not None:
                inspections.append(inspection)
            chars = _sequence(process.get("characteristics", []), f"{where}.characteristics")
            for ci, char_doc in enumerate(chars):
                char_where = f"{where}.characteristics[{ci}]"
                characteristics.append(
                    _parse_characteristic(char_doc, line_id, process_id, char_where)
                )
    _check_unique_ids(characteristics)
    return SimPlant(plant_id, tuple(characteristics), tuple(inspections))


def _parse_characteristic(doc: Any, line: str, process: str, where: str) -> SimCharacteristic:
    entry = _mapping(doc, where)
    char_id = _text(entry, "id", where)
    where = f"characteristic {char_id!r} ({where})"
    lsl, usl, target = (_number(entry, key, where) for key in ("lsl", "usl", "target"))
    try:
        nominal = derive_nominal(lsl, usl, target)
        sigma = derive_sigma(lsl, usl, nominal)
    except ValueError as exc:
        raise PlantConfigError(f"{where}: {exc}") from exc
    node_id, topic, field = _parse_source(entry.get("source"), where)
    unit = entry.get("unit")
    return SimCharacteristic(
        id=char_id,
        line=line,
        process=process,
        lsl=lsl,
        usl=usl,
        target=target,
        nominal=nominal,
        sigma=sigma,
        opcua_node_id=node_id,
        mqtt_topic=topic,
        mqtt_field=field,
        unit=str(unit) if unit is not None else None,
    )


def _parse_source(doc: Any, where: str) -> tuple[str | None, str | None, str | None]:
    """Return (opcua node id, mqtt topic, mqtt field); all None for other sources."""
    if doc is None:
        return None, None, None
    source = _mapping(doc, f"{where}.source")
    if "opcua" in source:
        opcua = _mapping(source["opcua"], f"{where}.source.opcua")
        return _text(opcua, "node_id", f"{where}.source.opcua"), None, None
    if "mqtt" in source:
        mqtt = _mapping(source["mqtt"], f"{where}.source.mqtt")
        topic = _text(mqtt, "topic", f"{where}.source.mqtt")
        return None, topic, _text(mqtt, "field", f"{where}.source.mqtt")
    _log.debug("%s: source %s is not simulated here", where, sorted(source))
    return None, None, None


def _parse_inspection(doc: Any, line: str, process: str, where: str) -> SimInspection | None:
    if doc is None:
        return None
    mqtt_doc = _mapping(doc, f"{where}.inspection").get("mqtt")
    if mqtt_doc is None:
        return None
    mqtt = _mapping(mqtt_doc, f"{where}.inspection.mqtt")
    topic = _text(mqtt, "topic", f"{where}.inspection.mqtt")
    field = mqtt.get("field", "verdict")
    if not isinstance(field, str) or not field:
        raise PlantConfigError(f"{where}.inspection.mqtt.field must be a non-empty string")
    return SimInspection(line, process, topic, field)


def _check_unique_ids(characteristics: list[SimCharacteristic]) -> None:
    seen: set[str] = set()
    for char in characteristics:
        if char.id in seen:
            raise PlantConfigError(f"characteristic id {char.id!r} appears more than once")
        seen.add(char.id)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PlantConfigError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _sequence(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise PlantConfigError(f"{where} must be a list, got {type(value).__name__}")
    return value


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise PlantConfigError(f"{where} needs a non-empty string {key!r}")
    return value


def _number(entry: Mapping[str, Any], key: str, where: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PlantConfigError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)
