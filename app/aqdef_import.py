"""AQDEF files onto the service: read, map each characteristic to an id, build push rows.

Everything of ``spcmon import FILE.dfq`` but the push itself (``app.transfer`` posts the
rows). Each characteristic of the file is resolved in this order: an explicit mapping (``--map
KEY=ID`` or a mapping file) whose KEY is its K2001 number or K2002 description, then its
K2001, then its K2002 equal to a characteristic id, then equal to a characteristic name (one
match only). An unresolved characteristic's values are rejected with the reason. The file's
spec limits and unit are compared with the service's: a difference is a warning (the
service's limits rule), never a failure.

Decisions: a value the file marks invalid (K0002 = 255/256) is sent with quality ``bad``,
stored and exported like every reading but never charted, rather than dropped, so the
service holds what the gauge measured and an export shows it. Every value carries its own
``ingest_id`` (file content, line, characteristic, target id): a re-run, even with more
characteristics mapped, stores nothing twice.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import yaml

from ingest.aqdef import AqdefError, AqdefFile, Characteristic, Flag, Value, parse, parse_pair

Service = Sequence[Mapping[str, Any]]  # what GET /api/v1/characteristics lists
Row = dict[str, Any]
QUALITY = {Flag.OK: "good", Flag.FLAGGED: "good", Flag.EXCLUDED: "bad"}


class AqdefImportError(Exception):
    """The file or the mapping file cannot be used; the message says why."""


@dataclass
class Plan:
    targets: dict[int, str] = field(default_factory=dict)  # AQDEF index -> service id
    unmapped: dict[int, str] = field(default_factory=dict)  # AQDEF index -> reason
    warnings: list[str] = field(default_factory=list)


@dataclass
class Findings:
    """What the summary reports before anything is sent."""

    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    unmapped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read(path: Path, encoding: str | None) -> tuple[AqdefFile, str, str]:
    """The parsed file, a digest of its content, and the name of its values' file (pairs)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".dfq":
            content = path.read_bytes()
            return parse(content, encoding), hashlib.sha256(content).hexdigest()[:24], ""
        dfd = path if suffix == ".dfd" else _twin(path, ".dfd")
        dfx = path if suffix == ".dfx" else _twin(path, ".dfx")
        description, values = dfd.read_bytes(), dfx.read_bytes()
        parsed = parse_pair(description, values, (dfd.name, dfx.name), encoding)
    except AqdefError as exc:
        raise AqdefImportError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise AqdefImportError(f"cannot read {path}: {exc}") from exc
    return parsed, hashlib.sha256(description + b"\0" + values).hexdigest()[:24], dfx.name


def _twin(path: Path, suffix: str) -> Path:
    """The ``.dfd`` beside a ``.dfx`` (or the reverse), whatever the case of its suffix."""
    for candidate in path.parent.iterdir():
        if candidate.stem == path.stem and candidate.suffix.lower() == suffix:
            return candidate
    raise AqdefImportError(
        f"{path}: {path.stem}{suffix} is missing beside it (an AQDEF .dfd holds the "
        "description, its .dfx twin the values; keep the two together, or import a .dfq)"
    )


def explicit_mapping(mapping: Mapping[str, str] | None, map_file: Path | None) -> dict[str, str]:
    """``--map`` pairs over the mapping file's."""
    return (load_mapping(map_file) if map_file else {}) | dict(mapping or {})


def load_mapping(path: Path) -> dict[str, str]:
    """A mapping file: YAML ``{K2001 or K2002: id}``, or CSV with ``aqdef,characteristic``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AqdefImportError(f"cannot read the mapping file {path}: {exc}") from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise AqdefImportError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise AqdefImportError(f"{path}: expected a mapping of K2001/K2002 to ids")
        return {str(k): str(v) for k, v in loaded.items()}
    rows = list(csv.DictReader(text.splitlines()))
    if rows and not {"aqdef", "characteristic"} <= rows[0].keys():
        raise AqdefImportError(f"{path}: the CSV header must name 'aqdef,characteristic'")
    return {r["aqdef"].strip(): r["characteristic"].strip() for r in rows if r["aqdef"]}


def label(char: Characteristic) -> str:
    """``characteristic 2 (K2001 'L1', K2002 'Length')``: how the summary names one."""
    named = [f"{k} {v!r}" for k, v in (("K2001", char.number), ("K2002", char.description)) if v]
    return f"characteristic {char.index}" + (f" ({', '.join(named)})" if named else "")


def plan(parsed: AqdefFile, service: Service | None, explicit: Mapping[str, str]) -> Plan:
    """Resolve each characteristic; ``service`` None: the key cannot list them (not checked)."""
    result = Plan()
    used: set[str] = set()
    by_id = {str(r["id"]): r for r in service} if service is not None else None
    for char in parsed.characteristics:
        if char.attributive:
            continue  # its values are not read
        key = next((k for k in (char.number, char.description) if k and k in explicit), None)
        if key is not None:
            used.add(key)
            target: str | None = explicit[key]
            reason = None
            if by_id is not None and target not in by_id:
                target, reason = None, f"--map {key}={explicit[key]}: no such characteristic"
        else:
            target, reason = _match(char, service)
        if target is None:
            result.unmapped[char.index] = reason or "not mapped"
            continue
        result.targets[char.index] = target
        if by_id is not None:
            result.warnings.extend(_differences(char, target, by_id[target]))
    result.warnings.extend(
        f"--map {key}: no characteristic of the file has this K2001 or K2002"
        for key in sorted(explicit.keys() - used)
    )
    return result


def _match(char: Characteristic, service: Service | None) -> tuple[str | None, str | None]:
    keys = [k for k in (char.number, char.description) if k]
    if not keys:
        return None, "it has neither K2001 nor K2002 to match; map it with --map"
    if service is None:
        return keys[0], None  # the service judges each row
    for key in keys:
        if any(r["id"] == key for r in service):
            return key, None
    for key in keys:
        named = [str(r["id"]) for r in service if r.get("name") == key]
        if len(named) == 1:
            return named[0], None
        if len(named) > 1:
            return None, f"{key!r} names {len(named)} characteristics ({', '.join(named)})"
    wanted = " or ".join(repr(k) for k in keys)
    return None, f"no characteristic has the id or name {wanted}; map it with --map {keys[0]}=ID"


def _differences(char: Characteristic, target: str, record: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    pairs = (("LSL", char.lsl, record.get("lsl")), ("USL", char.usl, record.get("usl")))
    if any(f is not None and (s is None or not math.isclose(f, s)) for _, f, s in pairs):
        file = ", ".join(f"{n} {f:g}" for n, f, _ in pairs if f is not None)
        ours = ", ".join(f"{n} {s:g}" for n, _, s in pairs if s is not None) or "none"
        found.append(f"{label(char)} -> {target}: the file's limits ({file}) differ from the "
                     f"service's ({ours}); the service's limits are used")  # fmt: skip
    unit = str(record.get("unit") or "")
    if char.unit and unit and char.unit.casefold() != unit.casefold():
        found.append(f"{label(char)} -> {target}: unit {char.unit!r} in the file, {unit!r} in "
                     "the service; check the values' scale")  # fmt: skip
    return found


def describe(
    parsed: AqdefFile, plan: Plan, listed: bool, values_name: str, zone: tzinfo | None
) -> Findings:
    """The file's problems (rejected rows or warnings) and what the summary should say."""
    found = Findings(warnings=list(plan.warnings))
    for p in parsed.problems:
        where = f"{p.source}: " if p.source and p.source != values_name else ""
        if p.value_lost:
            found.rejected.append((p.line, f"{where}{p.field}: {p.message}"))
        else:
            found.warnings.append(str(p))
    counts = Counter(v.characteristic for v in parsed.values)
    for index, reason in plan.unmapped.items():
        char = parsed.characteristic(index)
        name = label(char) if char else f"characteristic {index}"
        found.unmapped.append(f"{name}: {counts[index]} value(s) not imported: {reason}")
    if not listed:
        found.warnings.append(
            "the key may not list the service's characteristics (viewer role): each K2001 "
            "(else K2002) was sent as the characteristic id; names, limits and units were "
            "not compared"
        )
    found.notes.extend(_notes(parsed.values, zone))
    return found


def _notes(values: tuple[Value, ...], zone: tzinfo | None) -> list[str]:
    notes = []
    excluded = sum(v.flag is Flag.EXCLUDED for v in values)
    if excluded:
        notes.append(f"{excluded} value(s) marked invalid in the file (K0002 = 255/256) were "
                     "sent with quality bad: stored, not charted")  # fmt: skip
    flagged = sorted({v.attribute for v in values if v.flag is Flag.FLAGGED})
    if flagged:
        notes.append(f"K0002 attribute(s) {', '.join(map(str, flagged))} are not interpreted: "
                     "those values were imported as good")  # fmt: skip
    if any(v.time is not None and v.time.tzinfo is None for v in values):
        name = getattr(zone, "key", None) or (str(zone) if zone else None)
        local = f"this machine's local time ({datetime.now().astimezone():%Z})"
        notes.append(f"times without an offset were read as {name or local}")
    return notes


def push_rows(
    parsed: AqdefFile, plan: Plan, zone: tzinfo | None, digest: str,
    rejected: list[tuple[int, str]],
) -> Iterator[tuple[int, Row]]:  # fmt: skip
    """(line, push row) of each value that can be sent; the others go to ``rejected``."""
    for value in parsed.values:
        target = plan.targets.get(value.characteristic)
        try:
            if target is None:
                reason = plan.unmapped.get(value.characteristic, "not mapped")
                raise ValueError(f"K0001/{value.characteristic}: not mapped: {reason}")
            row = _row(value, target, zone)
        except ValueError as exc:
            rejected.append((value.line, str(exc)))
            continue
        yield value.line, row


def _row(value: Value, target: str, zone: tzinfo | None) -> Row:
    where = f"/{value.characteristic}"
    if value.time is None:
        raise ValueError(f"K0004{where}: no date/time; the service needs one for every value")
    stamp = value.time
    if stamp.tzinfo is None:  # plant-local as written; astimezone() reads it as local time
        stamp = stamp.replace(tzinfo=zone) if zone else stamp.astimezone()
    # the reading's identity is its content, not its place in the file: a gauge appends to
    # its .dfq, and importing the grown file again must store only the new values
    utc = stamp.astimezone(UTC).isoformat()
    basis = f"{target}|{utc}|{value.value!r}|{value.part_id}|{value.batch}|{value.flag}".encode()
    row: Row = {"characteristic": target, "time": stamp.isoformat(), "value": value.value,
                "quality": QUALITY[value.flag],
                "ingest_id": "aqdef:" + hashlib.sha256(basis).hexdigest()[:32]}  # fmt: skip
    for name, key, text in (("part", "K0014", value.part_id), ("lot", "K0006", value.batch)):
        if text is not None and len(text) > 256:
            raise ValueError(f"{key}{where}: longer than the service's 256 characters")
        if text is not None:
            row[name] = text
    return row
