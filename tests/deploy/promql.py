"""Just enough PromQL reading to name the series and labels an expression uses.

Not a parser: strings only occur in label matchers here, and the shipped expressions
use selectors, functions, aggregations with ``by``, ranges and arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"((?:[^\"\\]|\\.)*)\"")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_LABEL_VALUES = re.compile(r"^label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)$")


@dataclass
class Usage:
    """What one expression reads: series names, matchers per series, grouping labels."""

    series: set[str] = field(default_factory=set)
    matchers: list[tuple[str, str, str]] = field(default_factory=list)  # series, label, value
    grouping: set[str] = field(default_factory=set)


def usage(expr: str) -> Usage:
    out = Usage()
    for name, body in _SELECTOR.findall(expr):
        for label, value in _MATCHER.findall(body):
            out.matchers.append((name, label, value))
    rest = _SELECTOR.sub(lambda m: f" {m.group(1) or ''} ", expr)
    rest = _RANGE.sub(" ", rest)
    for labels in _GROUPING.findall(rest):
        out.grouping |= {label.strip() for label in labels.split(",") if label.strip()}
    rest = _GROUPING.sub(" ", rest)
    for name, call in _IDENTIFIER.findall(rest):
        if not call and name not in _KEYWORDS:
            out.series.add(name)
    return out


def label_values_query(query: str) -> tuple[str, str] | None:
    """(series, label) of a Grafana ``label_values(series, label)`` variable query."""
    match = _LABEL_VALUES.match(query.strip())
    return (match[1], match[2]) if match else None
