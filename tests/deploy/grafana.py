"""The provisioned Grafana dashboards: their queries, with Grafana's macros and template
variables replaced the way Grafana documents it, so that they can be run for real.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.deploy.deploy_files import DEPLOY, load_yaml

DASHBOARDS = DEPLOY / "grafana" / "dashboards"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "spcmon.yaml"

_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)")
_TIME_FILTER = re.compile(r"\$__timeFilter\(([^)]*)\)")


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def datasource_types() -> dict[str, str]:
    """uid -> type of every provisioned data source."""
    doc = load_yaml(DATASOURCES)
    return {ds["uid"]: ds["type"] for ds in doc["datasources"]}


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels inside


@dataclass(frozen=True)
class Query:
    dashboard: str
    where: str  # panel title or variable name, for messages
    datasource_uid: str
    text: str
    ref: str = ""  # the target's refId
    fmt: str = ""  # "time_series" or "table" for SQL targets


def queries(dashboard: Mapping[str, Any]) -> Iterator[Query]:
    """Every panel target and every query variable of a dashboard."""
    title = dashboard["title"]
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid", "")
            text = target.get("expr") or target.get("rawSql") or ""
            yield Query(title, panel["title"], uid, text, target["refId"], target.get("format", ""))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            uid = variable["datasource"]["uid"]
            yield Query(title, f"${variable['name']}", uid, text, variable["name"], "table")


def multi_valued(dashboard: Mapping[str, Any]) -> set[str]:
    return {
        v["name"]
        for v in dashboard.get("templating", {}).get("list", [])
        if v.get("multi") or v.get("includeAll")
    }


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def substitute_sql(
    text: str, values: Mapping[str, str], multi: set[str], start: datetime, end: datetime
) -> str:
    """A Grafana SQL query as the PostgreSQL data source would send it.

    Macros: ``$__timeFilter(c)`` -> ``c BETWEEN '<from>' AND '<to>'``, ``$__timeFrom()`` and
    ``$__timeTo()`` -> ``'<time>'`` (RFC 3339, UTC). Variables: ``${v:sqlstring}`` and a
    multi-value ``$v`` are quoted; a single-value ``$v`` is inserted as it is.
    """
    first, last = (f"'{t.strftime('%Y-%m-%dT%H:%M:%SZ')}'" for t in (start, end))
    text = _TIME_FILTER.sub(lambda m: f"{m[1]} BETWEEN {first} AND {last}", text)
    text = text.replace("$__timeFrom()", first).replace("$__timeTo()", last)

    def variable(m: re.Match[str]) -> str:
        name, fmt = m[1] or m[3], m[2]
        if name not in values:
            raise KeyError(f"no test value for ${name} (add it to the test)")
        if fmt == "sqlstring" or (fmt is None and name in multi):
            return _sql_string(values[name])
        if fmt in (None, "raw", "csv"):
            return values[name]
        raise KeyError(f"${{{name}:{fmt}}}: format not handled by the test")

    text = _VARIABLE.sub(variable, text)
    assert "$" not in text, f"unsubstituted macro or variable left in:\n{text}"
    return text


def substitute_promql(text: str, values: Mapping[str, str]) -> str:
    """A PromQL query with Grafana's interval variables and template variables filled."""
    builtins = {"__rate_interval": "1m", "__interval": "30s", "__range": "1h"}

    def variable(m: re.Match[str]) -> str:
        name = m[1] or m[3]
        return builtins.get(name) or values[name]

    text = _VARIABLE.sub(variable, text)
    assert "$" not in text, f"unsubstituted variable left in: {text}"
    return text
