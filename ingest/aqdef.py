"""AQDEF files (Q-DAS ASCII transfer format, ``.dfq`` or ``.dfd`` + ``.dfx``): bytes in,
characteristics and measured values out.

A pure parser: it knows nothing of the service. Every problem in the data is collected with
its line and K-field; only a file that cannot be read as AQDEF at all raises ``AqdefError``.
The frozen results (and the readers of dates and numbers) are in ``ingest.aqdef_model``.

Format facts relied on:

- One K-field per line, ``K2110/3 24.95``: field K2110 of characteristic 3. Without ``/n``
  the index is 1; ``/0`` means every part or characteristic (a default that an explicit
  ``/n`` overrides) or, for value fields, every value of the current part. K0100 is the number
  of characteristics, K1xxx fields describe the part, K2xxx (and K8xxx) a characteristic,
  K0001-K0099 one measured value (K0001 value, K0002 attribute, K0004 date/time, K0006 batch,
  K0014 part ident, ...).
- Values come as K-fields (``K0001/1 25.012``, then ``K0004/1 ...``; a K0001 of a
  characteristic already in the current part starts the next part) or as key-less value
  lines, one per part: the characteristics separated by 0x0F, each one's fields by 0x14 in a
  fixed order (``VALUE_LINE_FIELDS``); an empty value means "not measured on this part".
- K0002 attribute 255 marks a value as invalid (not to be evaluated); 256 is read the same
  way. Other attribute bits are kept but not interpreted.
- Dates: ``day.month.year/hour:minute[:second]``, also ``month/day/year`` and
  ``year-month-day``, a ``/``, space or ``.`` before the time; plant-local, no offset.
- Decimal separator ``.`` or ``,``. Encoding Windows-1252/ISO-8859-1 from most tools, UTF-8
  from some: UTF-8 is tried first, then Windows-1252, then ISO-8859-1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

from ingest.aqdef_model import (
    ATTRIBUTIVE_TYPES,
    CHARACTERISTIC_SEPARATOR,
    FIELD_SEPARATOR,
    VALUE_LINE_FIELDS,
    AqdefError,
    AqdefFile,
    Characteristic,
    Flag,
    Part,
    Problem,
    Value,
    decode,
    parse_number,
    parse_time,
)

__all__ = [
    "AqdefError",
    "AqdefFile",
    "Characteristic",
    "Flag",
    "Part",
    "Problem",
    "Value",
    "parse",
    "parse_pair",
]

_KFIELD = re.compile(r"K(\d{4})(?:/(\d+))?(?:[ \t]+(.*))?")


def parse(data: bytes, encoding: str | None = None) -> AqdefFile:
    """Read a ``.dfq`` file (description and values in one)."""
    text, used = decode(data, encoding)
    reader = _Reader()
    reader.feed(text, "")
    return reader.result(used)


def parse_pair(
    description: bytes, values: bytes, names: tuple[str, str], encoding: str | None = None
) -> AqdefFile:
    """Read a ``.dfd`` description and its ``.dfx`` values; ``names`` label the problems."""
    text, used = decode(description, encoding)
    reader = _Reader()
    reader.feed(text, names[0])
    reader.feed(decode(values, encoding)[0], names[1])
    return reader.result(used)


class _Entry(NamedTuple):
    text: str
    line: int
    source: str


@dataclass
class _Draft:
    """A value being read: its fields may follow on later lines."""

    line: int
    source: str
    characteristic: int
    attributive: bool  # its fields are kept as text, not read
    fields: dict[str, str] = field(default_factory=dict)
    value: float | None = None
    time: datetime | None = None
    attribute: int = 0
    broken: bool = False


class _Reader:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.declared: _Entry | None = None
        self.parts: dict[int, dict[str, _Entry]] = {}
        self.chars: dict[int, dict[str, _Entry]] = {}
        self.defaults: dict[str, dict[str, _Entry]] = {"1": {}, "2": {}}  # /0 fields
        self.char_part: dict[int, int] = {}
        self.current_part = 1
        self.drafts: list[_Draft] = []
        self.record: dict[int, _Draft] = {}  # the current part's values by characteristic
        self.source = ""
        self.sources: list[str] = []
        self.kfields = 0

    def problem(self, line: int, where: str, message: str, lost: bool = False) -> None:
        self.problems.append(Problem(line, where, message, self.source, lost))

    def feed(self, text: str, source: str) -> None:
        self.source, self.record = source, {}
        self.sources.append(source)
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        for number, raw in enumerate(lines, 1):  # not splitlines(): it also splits at 0x1C-0x1E
            line = raw.strip(" \t")
            if not line:
                continue
            if line.startswith("K"):
                self.kfield(number, line)
            else:
                self.value_line(number, line)

    def kfield(self, number: int, line: str) -> None:
        match = _KFIELD.fullmatch(line)
        if match is None:
            key = line.split(maxsplit=1)[0][:12]
            self.problem(number, key, "not a K-field line (Kxxxx[/n] value)", lost=True)
            return
        self.kfields += 1
        key, code, text = "K" + match[1], int(match[1]), (match[3] or "").strip()
        index = int(match[2]) if match[2] is not None else None
        if code == 100:
            self.declared = _Entry(text, number, self.source)
        elif code < 100:
            self.value_field(number, key, index, text)
        elif key[1] in "128" and text:
            self.description_field(number, key, index, text)
        # K01xx other than K0100, K3xxx-K7xxx, K9xxx (catalogues, structure) are not needed

    def description_field(self, number: int, key: str, index: int | None, text: str) -> None:
        level = "1" if key[1] == "1" else "2"
        entry = _Entry(text, number, self.source)
        if index == 0:
            self.defaults[level][key] = entry
        elif level == "1":
            self.current_part = index or 1
            self.parts.setdefault(self.current_part, {})[key] = entry
        else:
            self.char_part.setdefault(index or 1, self.current_part)
            self.chars.setdefault(index or 1, {})[key] = entry

    def value_field(self, number: int, key: str, index: int | None, text: str) -> None:
        where = f"{key}/{1 if index is None else index}"
        if not text:
            return  # an empty field says nothing
        if key == "K0001":
            if index == 0:
                self.problem(number, where, "a value needs its characteristic's index", True)
                return
            if (index or 1) in self.record:
                self.record = {}  # the next part's values begin
            self.set(self.draft(number, index or 1), key, text, number)
            return
        targets = list(self.record.values()) if index == 0 else [self.record.get(index or 1)]
        if not targets or targets[0] is None:
            self.problem(number, where, "no K0001 value of this characteristic before it")
        for draft in targets:
            if draft is not None:
                self.set(draft, key, text, number)

    def value_line(self, number: int, line: str) -> None:
        portions = line.split(CHARACTERISTIC_SEPARATOR)
        if len(portions) == 1 and FIELD_SEPARATOR not in line:
            try:
                parse_number(line)
            except ValueError:
                self.problem(number, "line", "neither a K-field nor a value line", lost=True)
                return
        self.record = {}
        for index, portion in enumerate(portions, 1):
            texts = [t.strip() for t in portion.split(FIELD_SEPARATOR)]
            if not texts[0]:
                continue  # not measured on this part
            draft = self.draft(number, index)
            for key, text in zip(VALUE_LINE_FIELDS, texts, strict=False):
                if text:
                    self.set(draft, key, text, number)

    def draft(self, number: int, index: int) -> _Draft:
        kind = {**self.defaults["2"], **self.chars.get(index, {})}.get("K2004")
        attributive = kind is not None and kind.text in ATTRIBUTIVE_TYPES
        draft = _Draft(number, self.source, index, attributive)
        self.record[index] = draft
        self.drafts.append(draft)
        return draft

    def set(self, draft: _Draft, key: str, text: str, number: int) -> None:
        draft.fields[key] = text
        if draft.attributive:
            return  # its value line holds counts in another order
        try:
            if key == "K0001":
                draft.value = parse_number(text)
            elif key == "K0002":
                draft.attribute = int(text)
            elif key == "K0004":
                draft.time = parse_time(text)
        except ValueError as exc:
            draft.broken = True
            message = str(exc) if key != "K0002" else f"{text!r} is not an integer attribute"
            self.problem(number, f"{key}/{draft.characteristic}", message, lost=True)

    def result(self, encoding: str) -> AqdefFile:
        if self.kfields == 0:
            raise AqdefError("no K-field line (Kxxxx value): this is not an AQDEF file")
        chars = tuple(self.characteristic(i) for i in sorted(self.chars))
        values = self.values({c.index: c for c in chars})
        self.check_declared(len(chars))
        parts = tuple(
            Part(i, self.texts({**self.defaults["1"], **f})) for i, f in sorted(self.parts.items())
        )
        order = {source: rank for rank, source in enumerate(self.sources)}
        problems = sorted(self.problems, key=lambda p: (order[p.source], p.line))
        return AqdefFile(encoding, self.count(), parts, chars, values, tuple(problems))

    @staticmethod
    def texts(entries: Mapping[str, _Entry]) -> Mapping[str, str]:
        return MappingProxyType({key: entry.text for key, entry in entries.items()})

    def characteristic(self, index: int) -> Characteristic:
        entries = {**self.defaults["2"], **self.chars[index]}
        limits = [self.limit(entries, key, index) for key in ("K2110", "K2111", "K2101")]
        first = min(entry.line for entry in self.chars[index].values())
        part = self.char_part[index]
        return Characteristic(index, part, first, self.texts(entries), *limits)

    def limit(self, entries: Mapping[str, _Entry], key: str, index: int) -> float | None:
        entry = entries.get(key)
        if entry is None:
            return None
        try:
            return parse_number(entry.text)
        except ValueError as exc:
            self.problems.append(Problem(entry.line, f"{key}/{index}", str(exc), entry.source))
            return None

    def values(self, chars: Mapping[int, Characteristic]) -> tuple[Value, ...]:
        kept: list[Value] = []
        attributive: dict[int, int] = {}
        for d in self.drafts:
            char = chars.get(d.characteristic)
            if char is not None and char.attributive:
                attributive[char.index] = attributive.get(char.index, 0) + 1
            elif d.broken or d.value is None:
                continue  # already reported, or not measured
            elif char is None:
                self.problems.append(Problem(d.line, f"K0001/{d.characteristic}",
                    f"no characteristic {d.characteristic} is described (no K2xxx/"
                    f"{d.characteristic} field)", d.source, True))  # fmt: skip
            else:
                kept.append(Value(d.line, d.characteristic, d.value, d.time, d.attribute,
                                  MappingProxyType(d.fields)))  # fmt: skip
        for index, count in attributive.items():
            entry = {**self.defaults["2"], **self.chars[index]}["K2004"]
            self.problems.append(Problem(entry.line, f"K2004/{index}", f"attributive "
                f"characteristic (type {entry.text}): its {count} value(s) are not read",
                entry.source, True))  # fmt: skip
        return tuple(kept)

    def count(self) -> int | None:
        try:
            return int(self.declared.text) if self.declared else None
        except ValueError:
            return None

    def check_declared(self, described: int) -> None:
        entry = self.declared
        if entry is None:
            return
        count = self.count()
        if count is None:
            message = f"{entry.text!r} is not a number of characteristics"
        elif count != described:
            message = f"declares {count} characteristic(s), the file describes {described}"
        else:
            return
        self.problems.append(Problem(entry.line, "K0100", message, entry.source))
