"""The results of reading an AQDEF file, and the readers of its field values.

Frozen and service-agnostic: ``ingest.aqdef`` builds them; the import maps them onto the
service's characteristics. See ``ingest.aqdef`` for the format facts relied on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ingest.errors import IngestError

__all__ = [
    "ATTRIBUTIVE_TYPES",
    "CHARACTERISTIC_SEPARATOR",
    "EXCLUDED_ATTRIBUTES",
    "FIELD_SEPARATOR",
    "VALUE_LINE_FIELDS",
    "AqdefError",
    "AqdefFile",
    "Characteristic",
    "Flag",
    "Part",
    "Problem",
    "Value",
    "decode",
    "parse_number",
    "parse_time",
]

CHARACTERISTIC_SEPARATOR = "\x0f"
FIELD_SEPARATOR = "\x14"  # DC4
VALUE_LINE_FIELDS = ("K0001", "K0002", "K0004", "K0005", "K0006",
                     "K0007", "K0008", "K0010", "K0011", "K0012")  # fmt: skip
EXCLUDED_ATTRIBUTES = frozenset({255, 256})
ATTRIBUTIVE_TYPES = frozenset({"1", "5", "6"})  # K2004: attribute data, error log sheets
_DATE_TIME = re.compile(
    r"(?:(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4}|\d{2})"
    r"|(?P<m2>\d{1,2})/(?P<d2>\d{1,2})/(?P<y2>\d{4}|\d{2})"
    r"|(?P<y3>\d{4})-(?P<m3>\d{1,2})-(?P<d3>\d{1,2}))"
    r"[/ .T](?P<H>\d{1,2}):(?P<M>\d{1,2})(?::(?P<S>\d{1,2})(?:[.,](?P<F>\d{1,6}))?)?"
)


class AqdefError(IngestError):
    """The file cannot be read as AQDEF at all (binary, undecodable, or no K-field in it)."""


@dataclass(frozen=True)
class Problem:
    """Something in the file that could not be used; ``field`` is e.g. ``K0004/2``."""

    line: int
    field: str
    message: str
    source: str = ""  # the file's name when a .dfd/.dfx pair was read
    value_lost: bool = False  # a measured value was dropped because of it

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}line {self.line}, {self.field}: {self.message}"


class Flag(StrEnum):
    """What the value's K0002 attribute says about it."""

    OK = "ok"  # 0 or absent
    EXCLUDED = "excluded"  # 255/256: marked invalid by the source, not to be evaluated
    FLAGGED = "flagged"  # another non-zero attribute, not interpreted here


@dataclass(frozen=True)
class Part:
    index: int
    fields: Mapping[str, str]  # K1xxx fields as written

    @property
    def number(self) -> str | None:
        return self.fields.get("K1001")

    @property
    def description(self) -> str | None:
        return self.fields.get("K1002")


@dataclass(frozen=True)
class Characteristic:
    index: int  # the /n of its fields
    part: int
    line: int  # where it is first described
    fields: Mapping[str, str]  # K2xxx/K8xxx fields as written (/0 defaults merged in)
    lsl: float | None  # K2110
    usl: float | None  # K2111
    nominal: float | None  # K2101

    @property
    def number(self) -> str | None:
        return self.fields.get("K2001")

    @property
    def description(self) -> str | None:
        return self.fields.get("K2002")

    @property
    def unit(self) -> str | None:
        return self.fields.get("K2142")

    @property
    def attributive(self) -> bool:
        return self.fields.get("K2004", "0") in ATTRIBUTIVE_TYPES


@dataclass(frozen=True)
class Value:
    line: int  # of its K0001 field or of its value line
    characteristic: int
    value: float
    time: datetime | None  # as written: naive (plant-local) unless the file gives an offset
    attribute: int  # K0002
    fields: Mapping[str, str]  # every value field as written (K0005, K0007, ...)

    @property
    def batch(self) -> str | None:
        return self.fields.get("K0006") or None

    @property
    def part_id(self) -> str | None:
        return self.fields.get("K0014") or None

    @property
    def flag(self) -> Flag:
        if self.attribute in EXCLUDED_ATTRIBUTES:
            return Flag.EXCLUDED
        return Flag.FLAGGED if self.attribute else Flag.OK


@dataclass(frozen=True)
class AqdefFile:
    encoding: str
    declared: int | None  # K0100
    parts: tuple[Part, ...]
    characteristics: tuple[Characteristic, ...]
    values: tuple[Value, ...]
    problems: tuple[Problem, ...]

    def characteristic(self, index: int) -> Characteristic | None:
        return next((c for c in self.characteristics if c.index == index), None)


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The file's text and the encoding used (``encoding``, else UTF-8 or Windows-1252)."""
    if b"\x00" in data:
        raise AqdefError("the file holds NUL bytes: it is binary, not AQDEF text")
    if encoding is not None:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise AqdefError(f"cannot decode the file as {encoding}: {exc}") from exc
    for candidate in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(candidate), candidate.removesuffix("-sig")
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"  # cp1252 leaves 5 bytes undefined


def parse_time(text: str) -> datetime:
    """An AQDEF date/time (``31.12.2026/23:59:59`` and the other orders, or ISO 8601)."""
    match = _DATE_TIME.fullmatch(text.strip())
    if match is None:
        try:
            return datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a date and time (31.12.2026/23:59:59)") from None
    g = match.groupdict()
    year = int(g["y"] or g["y2"] or g["y3"])
    if year < 100:
        year += 2000 if year < 70 else 1900
    micro = int((g["F"] or "0").ljust(6, "0"))
    try:
        return datetime(year, int(g["m"] or g["m2"] or g["m3"]), int(g["d"] or g["d2"] or g["d3"]),
                        int(g["H"]), int(g["M"]), int(g["S"] or 0), micro)  # fmt: skip
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid date and time ({exc})") from None


def parse_number(text: str) -> float:
    """A number written with a decimal point or comma; ``ValueError`` says what is wrong."""
    plain = text.strip()
    if "," in plain and "." not in plain:
        plain = plain.replace(",", ".")  # decimal comma
    try:
        number = float(plain)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number")
    return number
