"""A small, known history in the service's real schema (written through the store, as the
service writes it), and the dashboards' SQL run against it with Grafana's substitutions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from app.wiring import characteristic_records
from ingest.model import DeadLetter, Measurement, Quality
from ingest.plant import load_plant_config
from ingest.store import AlarmRecord, GradeSnapshot, IncidentDetails, Store, StoredLimits
from spc import LimitSet
from tests.deploy.deploy_files import DEPLOY
from tests.deploy.grafana import (
    dashboard_files,
    datasource_types,
    load,
    multi_valued,
    queries,
    substitute_sql,
)

PLANT = DEPLOY / "examples" / "machining-plant.yaml"
NOW = datetime.now(UTC).replace(microsecond=0)
START, END = NOW - timedelta(hours=1), NOW + timedelta(minutes=1)  # the dashboards' range
T0 = NOW - timedelta(minutes=30)
IMR, XBAR = "shaft1.turning.diameter", "shaft1.turning.length"  # imr; xbar_r with n = 5
GROUPED = "shaft1.grinding.roughness"  # joined an incident opened on the runout
LINE = "shaft1"
IMR_VALUES = [34.99 + 0.001 * ((i * 7) % 11 - 5) for i in range(40)]
XBAR_VALUES = [212.0 + 0.01 * ((i * 3) % 5 - 2) for i in range(42)]
BASELINE = 25  # the I-MR limits judge the points after the 25th
LIMITS = LimitSet(1, center=34.99, ucl=35.0, lcl=34.98, sigma=0.0033, mr_center=0.004,
                  mr_ucl=0.013, baseline_n=BASELINE, dispersion_lcl=0.0)  # fmt: skip


def at(i: int) -> datetime:
    return T0 + timedelta(seconds=i)


def _measurements() -> list[Measurement]:
    rows = [Measurement(at(i), IMR, v, f"d-{i}", "opcua:test") for i, v in enumerate(IMR_VALUES)]
    rows += [Measurement(at(i), XBAR, v, f"l-{i}", "opcua:test") for i, v in enumerate(XBAR_VALUES)]
    rows.append(Measurement(at(100), IMR, 0.0, "d-bad", "opcua:test", quality=Quality.BAD))
    return rows


async def populate(store: Store) -> None:
    """The example plant's characteristics and a little of everything the dashboards show."""
    await store.upsert_characteristics(characteristic_records(load_plant_config(PLANT)))
    await store.add_measurements(_measurements())
    await store.save_limits(StoredLimits(IMR, LIMITS, at(BASELINE), "Phase I: 25 points",
                                         effective_at=at(BASELINE - 1)))  # fmt: skip
    incident = AlarmRecord(
        characteristic="shaft1.grinding.runout", rule="cusum", chart="cusum", state="open",
        opened_at=at(10), last_at=at(20), count=3, limit_version=1, last_value=0.012,
        message="CUSUM upper signal", line=LINE, process="shaft1.grinding", severity="critical",
        details=IncidentDetails(characteristics=("shaft1.grinding.runout", GROUPED)),
    )  # fmt: skip
    await store.save_alarm(incident)
    await store.add_dead_letters([DeadLetter(at(5), "mqtt:plant-north/housing2/vision/result",
                                             "payload is not valid JSON", "{oops")])  # fmt: skip
    await store.add_grade_snapshots([
        GradeSnapshot(at(0), "line", LINE, 3, "cpk", {"cpk": 1.4}),
        GradeSnapshot(at(60), "line", LINE, 4, None, {"cpk": 1.7}),
    ])  # fmt: skip


@dataclass(frozen=True)
class Answer:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]


Key = tuple[str, str, str, str]  # dashboard uid, panel title (or $variable), refId, $characteristic


def dashboard_queries(characteristic: str) -> list[tuple[Key, str, str]]:
    """(key, format, SQL as Grafana would send it) of every SQL query of every dashboard."""
    types = datasource_types()
    values = {"characteristic": characteristic, "line": LINE}
    out = []
    for path in dashboard_files():
        dashboard = load(path)
        multi = multi_valued(dashboard)
        for q in queries(dashboard):
            if types[q.datasource_uid] == "grafana-postgresql-datasource":
                text = substitute_sql(q.text, values, multi, START, END)
                out.append(((dashboard["uid"], q.where, q.ref, characteristic), q.fmt, text))
    return out


def run_all(dsn: str, schema: str | None = None) -> dict[Key, Answer]:
    """Every dashboard query for both test characteristics, on one connection."""
    answers: dict[Key, Answer] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        if schema is not None:
            conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
        for characteristic in (IMR, XBAR, GROUPED):
            for key, fmt, text in dashboard_queries(characteristic):
                try:
                    cur = conn.execute(text.encode())  # no parameters: % is not special
                except psycopg.Error as exc:
                    raise AssertionError(f"{key}: {exc}\n{text}") from exc
                assert cur.description is not None, f"{key}: returned no result set"
                columns = [c.name for c in cur.description]
                if fmt == "time_series":
                    assert columns[0] == "time", f"{key}: the first column must be 'time'"
                answers[key] = Answer(columns, cur.fetchall())
    return answers


def panel(
    answers: Mapping[Key, Answer], uid: str, title: str, char: str = IMR, ref: str = "A"
) -> Answer:
    return answers[(uid, title, ref, char)]
