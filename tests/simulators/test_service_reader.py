"""The reader and the scorer against the real service (demo plant, SQLite), one app per module.

The run, pushed once through the MES API, one part a second from T0 (an hour ago):

- ``line1.turning.diameter`` (I-MR, Western Electric rules, EWMA, CUSUM): 175 values
  repeating 25 + (0.3, -0.3, 0.5, -0.5) um, which breaks no rule; from part 150 on 8 um
  higher (sigma-hat = MR-bar / d2 = 0.8 / 1.128 = 0.71 um, so about +11 sigma).
- ``line1.turning.length`` (X-bar R, n = 5): 175 values, every subgroup a permutation of
  120 + (0.3, -0.3, 0.5, -0.5, 0) um: 35 points on the centre line.
- ``line1.grinding.roughness``: no data.

The default baseline (25 points or subgroups) is Phase I; so in control are parts 25..149
of the diameter (125 points) and length subgroups 25..34 (10 points): 135 in all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import app.api.routes.charts as charts_route
from app import Settings, create_app
from simulators.scorer import GroundTruth, Observed, parse_ground_truth, score
from simulators.service_reader import (
    ServiceReadError,
    default_end,
    read_alarms,
    read_chart_points,
    read_signals,
)
from tests.support.api import key_headers

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "demo-plant.yaml"
DIAMETER, LENGTH, ROUGHNESS = (
    "line1.turning.diameter",
    "line1.turning.length",
    "line1.grinding.roughness",
)
PARTS, SHIFT_AT, UM = 175, 150, 0.001
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _at(part: int) -> datetime:
    return T0 + timedelta(seconds=part)


def _rows() -> list[dict[str, Any]]:
    cycle, subgroup = (0.3, -0.3, 0.5, -0.5), (0.3, -0.3, 0.5, -0.5, 0.0)
    rows = []
    for i in range(PARTS):
        shift = 8 * UM if i >= SHIFT_AT else 0.0
        time = _at(i).isoformat()
        rows.append({"characteristic": DIAMETER, "value": 25 + cycle[i % 4] * UM + shift,
                     "time": time})  # fmt: skip
        rows.append({"characteristic": LENGTH, "value": 120 + subgroup[(i + i // 5) % 5] * UM,
                     "time": time})  # fmt: skip
    return rows


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


SHIFT = {
    "id": f"mean-shift:{DIAMETER}", "kind": "mean-shift", "characteristic": DIAMETER,
    "start_part": SHIFT_AT, "end_part": None, "started_at": _iso(_at(SHIFT_AT)),
    "ended_at": None, "params": {"size_sigma": 11.3}, "description": "+8 um",
}  # fmt: skip


def _truth(first_part: int = 0, faults: tuple[dict[str, Any], ...] = (SHIFT,)) -> GroundTruth:
    """The run's ground truth; ``first_part`` > 0 pretends the run began later."""
    return parse_ground_truth({
        "format": "spcmon-ground-truth/1", "scenario": "mean-shift", "seed": 7,
        "plant": "demo", "takt_s": 1.0, "started_at": _iso(_at(first_part)),
        "parts_generated": PARTS - first_part,
        "characteristics": {c: {} for c in (DIAMETER, LENGTH, ROUGHNESS)},
        "faults": list(faults),
    })  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The demo service with the run above pushed (live: alarms open)."""
    settings = Settings(config=DEMO_CONFIG, data_dir=tmp_path_factory.mktemp("svc") / "data")
    with TestClient(create_app(settings), headers=key_headers(settings)) as test_client:
        answer = test_client.post("/api/v1/measurements", json={"measurements": _rows()})
        assert answer.json() == {"accepted": 2 * PARTS, "rejected": []}
        yield test_client


def test_the_reader_sees_both_phases_and_the_subgroups(client: TestClient) -> None:
    seen = read_signals(client, _truth())
    diameter, length = seen[DIAMETER].points, seen[LENGTH].points
    assert [len(diameter), len(length), len(seen[ROUGHNESS].points)] == [PARTS, PARTS // 5, 0]
    assert [p.limit_version for p in diameter[24:26]] == [None, 1]  # 25 baseline points
    assert [p.limit_version for p in length[24:26]] == [None, 1]
    assert length[0].time == _at(4)  # a subgroup is plotted at its last value
    signalled = [i for i, p in enumerate(diameter) if p.sources]
    assert signalled == list(range(SHIFT_AT, PARTS))
    assert diameter[SHIFT_AT].sources == {"location", "dispersion", "ewma", "cusum"}


def test_the_shift_is_caught_on_its_first_point_with_no_false_alarm(client: TestClient) -> None:
    report = score(_truth(), read_signals(client, _truth()))
    (fault,) = report.faults
    assert (fault.chart.status, fault.chart.delay_points, fault.chart.delay_s) == (
        "detected", 1, 0.0,
    )  # fmt: skip
    # four alarms (rule 1 on I and MR, EWMA, CUSUM) open on the first shifted part
    assert (fault.alarm.status, fault.alarm.delay_points, fault.alarm.delay_s) == (
        "detected", 1, 0.0,
    )  # fmt: skip
    assert fault.faulty_points == PARTS - SHIFT_AT
    counts = {c: f.in_control_points for c, f in report.by_characteristic.items()}
    assert counts == {DIAMETER: 125, LENGTH: 10, ROUGHNESS: 0}
    total = report.false_alarms
    assert (total.in_control_points, total.signal_points, total.alarms) == (135, 0, 0)
    assert f"{ROUGHNESS}: no chart points read" in report.notes


def test_pages_are_joined_each_with_its_own_ewma_and_cusum_signals(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, end = _at(-1), default_end(_truth())
    whole = read_chart_points(client, DIAMETER, start, end)
    monkeypatch.setattr(charts_route, "MAX_POINTS", 40)
    paged = read_chart_points(client, DIAMETER, start, end)
    assert [p.page for p in paged[::40]] == [0, 1, 2, 3, 4]
    assert [(p.time, p.limit_version) for p in paged] == [(p.time, p.limit_version) for p in whole]
    # the shift starts mid-page (150 on the page 120..159): the same signals either way
    assert [p.sources for p in paged] == [p.sources for p in whole]
    (fault,) = score(_truth(), {DIAMETER: Observed(tuple(paged))}).faults
    assert (fault.chart.delay_points, fault.crosses_page) == (1, False)


def test_the_shift_is_one_incident_read_with_its_opening_rule_and_chart(
    client: TestClient,
) -> None:
    # one incident per problem, opened by the CUSUM (the default pager) on the first
    # shifted point; the rule 1, MR and EWMA signals of that point are its evidence
    [incident] = read_alarms(client, DIAMETER)
    assert (incident.rule, incident.chart, incident.opened_at) == ("cusum", "cusum", _at(SHIFT_AT))
    assert incident.source == "cusum"
    assert incident.count > PARTS - SHIFT_AT  # every later point signalled too


def test_only_alarms_open_during_the_run_are_read_and_earlier_ones_are_not_false(
    client: TestClient,
) -> None:
    # a "run" from part 160 that claims no fault: every point signals (the shift goes on),
    # but the incident opened at 150, before it: read (it is open during the run) and not
    # a false alarm of the run. The window starts 1 s early: parts 159..174, 16 points.
    truth = _truth(first_part=160, faults=())
    seen = read_signals(client, truth)
    assert [a.opened_at for a in seen[DIAMETER].alarms] == [_at(SHIFT_AT)]
    false = score(truth, seen).by_characteristic[DIAMETER]
    assert (false.in_control_points, false.signal_points, false.alarms) == (16, 16, 0)


def test_an_unknown_characteristic_is_an_error_naming_it_and_the_status(
    client: TestClient,
) -> None:
    with pytest.raises(ServiceReadError, match=r"'line9\.nothing'.*HTTP 404.*no characteristic"):
        read_chart_points(client, "line9.nothing", _at(0), _at(10))


def test_the_default_end_covers_a_run_stamped_ahead_of_the_clock() -> None:
    truth = _truth()
    now = T0 + timedelta(seconds=10)  # the nominal last part, T0 + 175 s, is later
    assert default_end(truth, now) == T0 + timedelta(seconds=PARTS + 1)
    later = T0 + timedelta(hours=2)
    assert default_end(truth, later) == later + timedelta(seconds=1)
