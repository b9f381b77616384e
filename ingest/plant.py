"""The declarative plant configuration: plant -> lines -> processes -> characteristics.

Loaded from YAML and validated on load; every problem is reported with the path of the
entry it concerns, e.g. ``lines[0] 'line1' > processes[1] 'grinding' >
characteristics[0] 'line1.grinding.roughness' > usl: ...``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from ingest.errors import ConfigError

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
RULE_IDS = ("1", "2", "3", "4", "5", "6", "7", "8")
RULE_PRESETS = ("nelson", "western_electric", "aiag")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpcuaSource(_Strict):
    node_id: str = Field(pattern=r"^(ns=\d+;)?[isgb]=.+$", description="e.g. ns=2;s=Line1/Temp")
    endpoint: str | None = Field(
        default=None, description="overrides SPCMON_OPCUA__ENDPOINT for this node"
    )


class MqttSource(_Strict):
    topic: str = Field(
        min_length=1,
        max_length=65535,
        description="topic or topic filter: + stands for one level, a final # for the rest "
        "(plant/line1/+/result)",
    )
    field: str = Field(min_length=1, description="dotted path into the JSON payload")

    @field_validator("topic")
    @classmethod
    def _valid_filter(cls, topic: str) -> str:
        check_topic_filter(topic)
        return topic


def check_topic_filter(topic: str) -> None:
    """Raise ValueError unless ``topic`` is a valid MQTT topic filter (MQTT 3.1.1 §4.7):
    ``+`` fills a whole level, ``#`` only the last one, no NUL character."""
    if "\x00" in topic:
        raise ValueError("a topic cannot contain the NUL character")
    if topic.startswith(("$share/", "$queue/")):
        raise ValueError(f"shared subscriptions are not supported; name the topic: {topic!r}")
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"'#' must be a whole level and the last one: {topic!r}")
        if "+" in level and level != "+":
            raise ValueError(f"'+' must be a whole level (a/+/c, not a/b+/c): {topic!r}")


class SparkplugSource(_Strict):
    """A metric of a Sparkplug B edge node (``device`` unset) or of one of its devices."""

    group: str = Field(min_length=1, description="Sparkplug group id")
    node: str = Field(min_length=1, description="edge node id")
    device: str | None = Field(default=None, min_length=1, description="unset: a node metric")
    metric: str = Field(min_length=1, description="metric name as in the birth, e.g. gap_mm")

    @field_validator("group", "node", "device")
    @classmethod
    def _one_topic_level(cls, value: str | None) -> str | None:
        if value is not None and any(c in value for c in "+/#"):
            raise ValueError(f"a Sparkplug id is one topic level, without + / #: {value!r}")
        return value


class Source(_Strict):
    opcua: OpcuaSource | None = None
    mqtt: MqttSource | None = None
    sparkplug: SparkplugSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        if sum(kind is not None for kind in (self.opcua, self.mqtt, self.sparkplug)) != 1:
            raise ValueError("give exactly one of 'opcua' or 'mqtt' or 'sparkplug'")
        return self


class InspectionSource(_Strict):
    mqtt: MqttSource


class EwmaSettings(_Strict):
    lam: float = Field(default=0.2, gt=0, le=1, description="weight of the newest point")
    L: float = Field(default=3.0, gt=0, description="limit width in sigma")


class CusumSettings(_Strict):
    # k 0.35, h 6.7, designed with the limits a 300-point Phase I gives (spc.cusum_arl,
    # benchmarks/cusum_design.py): about 390 points per false incident pooled over a plant
    # (487 with known limits; 268 on a 100-point Phase I); the default incidents page on it
    k: float = Field(default=0.35, ge=0, description="reference value in sigma")
    h: float = Field(default=6.7, gt=0, description="decision interval in sigma")


_Entry = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class OcapCatalogue(_Strict):
    """The assignable causes and corrective actions offered when acknowledging an incident
    (out-of-control action plan); free text stays allowed."""

    causes: tuple[_Entry, ...] = Field(default=(), max_length=100)
    actions: tuple[_Entry, ...] = Field(default=(), max_length=100)


class CharacteristicConfig(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    unit: str = ""
    lsl: float | None = None
    usl: float | None = None
    target: float | None = None
    subgroup_size: int = Field(
        default=1, ge=1, le=25, description="1 for imr; 2..25 consecutive values for xbar_*"
    )
    chart: Literal["imr", "xbar_r", "xbar_s"] = "imr"
    rules: str | tuple[str, ...] = Field(
        default="nelson", description="a preset (nelson, western_electric, aiag) or rule ids"
    )
    ewma: EwmaSettings | None = Field(default_factory=EwmaSettings, description="null: off")
    cusum: CusumSettings | None = Field(default_factory=CusumSettings, description="null: off")
    source: Source | None = None
    ocap: OcapCatalogue | None = None

    @model_validator(mode="after")
    def _coherent(self) -> CharacteristicConfig:
        if self.chart == "imr" and self.subgroup_size != 1:
            raise ValueError("chart imr plots individuals: subgroup_size must be 1 (or use xbar_r)")
        if self.chart != "imr" and self.subgroup_size < 2:
            raise ValueError(f"chart {self.chart} needs subgroup_size 2..25")
        if self.lsl is not None and self.usl is not None and not self.lsl < self.usl:
            raise ValueError(f"lsl ({self.lsl}) must be below usl ({self.usl})")
        if self.target is not None:
            if self.lsl is not None and self.target < self.lsl:
                raise ValueError(f"target ({self.target}) is below lsl ({self.lsl})")
            if self.usl is not None and self.target > self.usl:
                raise ValueError(f"target ({self.target}) is above usl ({self.usl})")
        if isinstance(self.rules, str):
            if self.rules not in RULE_PRESETS:
                raise ValueError(f"rules: unknown preset {self.rules!r}; use one of {RULE_PRESETS}")
        else:
            unknown = [r for r in self.rules if r not in RULE_IDS]
            if unknown:
                raise ValueError(f"rules: unknown rule ids {unknown}; rules are '1'..'8'")
        return self


class ProcessConfig(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    inspection: InspectionSource | None = None
    characteristics: tuple[CharacteristicConfig, ...] = ()
    ocap: OcapCatalogue | None = None


class LineConfig(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    processes: tuple[ProcessConfig, ...] = ()


class PlantInfo(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    ocap: OcapCatalogue | None = None


class PlantConfig(_Strict):
    plant: PlantInfo
    lines: tuple[LineConfig, ...]

    @model_validator(mode="after")
    def _unique_ids(self) -> PlantConfig:
        if not self.lines:
            raise ValueError("define at least one line")
        seen: set[str] = set()
        for _, _, char in self.iter_characteristics():
            if char.id in seen:
                raise ValueError(f"characteristic id {char.id!r} is used more than once")
            seen.add(char.id)
        return self

    def iter_characteristics(
        self,
    ) -> Iterator[tuple[LineConfig, ProcessConfig, CharacteristicConfig]]:
        """Every characteristic with the line and process it belongs to."""
        for line in self.lines:
            for process in line.processes:
                for char in process.characteristics:
                    yield line, process, char


def _entry_path(raw: Any, loc: tuple[int | str, ...]) -> str:
    """Render a pydantic location with the ids of the entries it walks through."""
    parts: list[str] = []
    node = raw
    for key in loc:
        if isinstance(key, int):
            node = node[key] if isinstance(node, list) and key < len(node) else None
            ident = node.get("id") if isinstance(node, dict) else None
            parts[-1] += f"[{key}]" + (f" {ident!r}" if ident else "")
        else:
            node = node.get(key) if isinstance(node, dict) else None
            parts.append(str(key))
    return " > ".join(parts) or "(top level)"


def parse_plant_config(raw: Any, source: str = "<memory>") -> PlantConfig:
    """Validate an already-parsed document; raise ``ConfigError`` naming each bad entry."""
    if not isinstance(raw, dict):
        raise ConfigError(source, ["(top level): expected a mapping with 'plant' and 'lines'"])
    try:
        return PlantConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{_entry_path(raw, tuple(err['loc']))}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        ]
        raise ConfigError(source, problems) from exc


def load_plant_config(path: str | Path) -> PlantConfig:
    """Read and validate a YAML plant configuration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise ConfigError(str(path), [f"YAML syntax error at {where}: {exc.problem}"]) from exc
    return parse_plant_config(raw, str(path))
