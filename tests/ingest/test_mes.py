"""normalise: an MES batch becomes a submission, with bad rows rejected one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from ingest.mes import SOURCE, MesBatch, RowRejection, normalise
from ingest.model import CostCategory

KNOWN = frozenset({"line1.turning.diameter", "line1.turning.length"})
NOW = datetime.now(UTC)
EARLIER = (NOW - timedelta(hours=1)).isoformat()


def _row(char: str = "line1.turning.diameter", value: float = 25.01, **more: Any) -> dict[str, Any]:
    return {"characteristic": char, "value": value, "time": EARLIER, **more}


def _batch(**body: Any) -> MesBatch:
    return MesBatch.model_validate(body)


def test_good_rows_become_records_of_the_submission() -> None:
    batch = _batch(
        measurements=[_row(part="S1", lot="L7"), _row("line1.turning.length", 120.01)],
        verdicts=[
            {
                "process": "line2.vision",
                "part": "S1",
                "ok": False,
                "time": EARLIER,
                "defects": ["scratch"],
            }
        ],
        cost_events=[{"scope": "line1", "category": "scrap", "amount": 42.5, "time": EARLIER}],
    )

    sub, rejected = normalise(batch, KNOWN, NOW)

    assert rejected == []
    assert sub.dead_letters == []
    assert [(m.characteristic, m.value, m.part, m.lot) for m in sub.measurements] == [
        ("line1.turning.diameter", 25.01, "S1", "L7"),
        ("line1.turning.length", 120.01, None, None),
    ]
    assert {m.source for m in sub.measurements} == {SOURCE}
    [v] = sub.verdicts
    assert (v.process, v.part, v.ok, v.first_pass, v.defects) == (
        "line2.vision",
        "S1",
        False,
        True,
        ("scratch",),
    )
    [c] = sub.cost_events
    assert (c.category, c.amount, c.currency) == (CostCategory.SCRAP, 42.5, "CNY")


def test_a_row_of_an_unknown_characteristic_is_rejected_with_its_index_and_field() -> None:
    batch = _batch(measurements=[_row(), _row("line9.nowhere"), _row(value=25.02)])

    sub, rejected = normalise(batch, KNOWN, NOW)

    assert rejected == [
        RowRejection("measurements[1]", "characteristic", "unknown characteristic 'line9.nowhere'")
    ]
    assert [m.value for m in sub.measurements] == [25.01, 25.02]
    [letter] = sub.dead_letters
    assert letter.reason == "measurements[1].characteristic: unknown characteristic 'line9.nowhere'"
    assert '"line9.nowhere"' in letter.payload
    assert (letter.source, letter.received_at) == (SOURCE, NOW)


@pytest.mark.parametrize(
    ("kind", "row"),
    [
        ("measurements", _row(time=(NOW + timedelta(hours=2)).isoformat())),
        (
            "verdicts",
            {
                "process": "p",
                "part": "S",
                "ok": True,
                "time": (NOW + timedelta(hours=6)).isoformat(),
            },
        ),
        (
            "cost_events",
            {
                "scope": "line1",
                "category": "claim",
                "amount": 1,
                "time": (NOW + timedelta(days=1)).isoformat(),
            },
        ),
    ],
)
def test_a_row_with_a_future_timestamp_is_rejected(kind: str, row: dict[str, Any]) -> None:
    good = _row() if kind == "measurements" else None
    rows = [good, row] if good else [row]

    sub, rejected = normalise(_batch(**{kind: rows}), KNOWN, NOW)

    [rejection] = rejected
    assert rejection.row == f"{kind}[{len(rows) - 1}]"
    assert rejection.field == "time"
    assert "in the future" in rejection.reason
    assert len(sub.dead_letters) == 1
    assert len(sub.measurements) == (1 if good else 0)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"measurements": [_row(value=float("nan"))]}, id="NaN value"),
        pytest.param({"measurements": [_row(time="2025-03-14T08:00:00")]}, id="naive time"),
        pytest.param({"measurements": [_row(uls=1)]}, id="unknown key"),
        pytest.param({"measurements": [_row(char="")]}, id="empty characteristic"),
        pytest.param(
            {"cost_events": [{"scope": "l", "category": "scrap", "amount": -1, "time": EARLIER}]},
            id="negative cost",
        ),
        pytest.param(
            {"cost_events": [{"scope": "l", "category": "bribe", "amount": 1, "time": EARLIER}]},
            id="unknown category",
        ),
        pytest.param({"idempotency_key": ""}, id="empty key"),
    ],
)
def test_a_malformed_body_is_refused_whole(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MesBatch.model_validate(body)


def test_a_resent_batch_with_the_same_key_gets_the_same_ingest_ids() -> None:
    body = {
        "idempotency_key": "mes-push-0042",
        "measurements": [_row(), _row(value=25.02)],
        "verdicts": [{"process": "p", "part": "S", "ok": True, "time": EARLIER}],
        "cost_events": [{"scope": "line1", "category": "rework", "amount": 3, "time": EARLIER}],
    }

    first, _ = normalise(_batch(**body), KNOWN, NOW)
    resent, _ = normalise(_batch(**body), KNOWN, NOW + timedelta(minutes=1))

    def ids(sub: Any) -> list[str]:
        return [r.ingest_id for r in (*sub.measurements, *sub.verdicts, *sub.cost_events)]

    assert ids(first) == ids(resent)
    assert len(set(ids(first))) == 4


def test_different_keys_give_different_ingest_ids() -> None:
    a, _ = normalise(_batch(idempotency_key="a", measurements=[_row()]), KNOWN, NOW)
    b, _ = normalise(_batch(idempotency_key="b", measurements=[_row()]), KNOWN, NOW)

    assert a.measurements[0].ingest_id != b.measurements[0].ingest_id


def test_without_a_key_identical_rows_get_identical_ids() -> None:
    sub, _ = normalise(_batch(measurements=[_row(), _row(), _row(value=25.02)]), KNOWN, NOW)
    again, _ = normalise(_batch(measurements=[_row()]), KNOWN, NOW)

    first, twin, other = (m.ingest_id for m in sub.measurements)
    assert first == twin == again.measurements[0].ingest_id
    assert other != first
    assert first.startswith("mes:")


PINNED_ROWS = [
    {"characteristic": "line1.turning.diameter", "value": 25.01, "time": "2026-03-01T08:00:00Z"},
    {
        "characteristic": "line1.turning.diameter",
        "value": 1e20,
        "time": "2026-03-01T09:00:00.123456+01:00",
        "part": "S-1",
        "lot": "L7",
    },
    {
        "characteristic": "line1.turning.length",
        "value": -0.0,
        "time": "2026-03-01T08:00:00Z",
        "quality": "uncertain",
    },
    {
        "characteristic": "line1.turning.length",
        "value": 3,
        "time": "2026-03-01T08:00:00.5-05:30",
        "part": 'Ø 25 "h6"',
        "quality": "good",
    },
    {
        "characteristic": "line1.turning.length",
        "value": 1.5e-7,
        "time": "2026-03-01T08:00:00Z",
        "lot": "lot\u00e9\u4e2d",
    },
    {
        "characteristic": "line1.turning.length",
        "value": 1.0,
        "time": "2026-03-01T08:00:00Z",
        "ingest_id": "own-1",
    },
]
PINNED_OTHERS = {
    "verdicts": [
        {"process": "line2.vision", "part": "S1", "ok": False, "time": "2026-03-01T08:00:00Z"}
    ],
    "cost_events": [
        {"scope": "line1", "category": "scrap", "amount": 42.5, "time": "2026-03-01T08:00:00Z"}
    ],
}


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param(
            None,
            [
                "mes:28e9dc90779fa4f779eaff8e3a152a13",
                "mes:5ec5257608ab1c45d3ab0ec1f58045eb",
                "mes:ca52c24fa31d980c1a63a3680110590f",
                "mes:cfdce06e2de6e85beb788e6374777579",
                "mes:ca7455d238a065059e04bb0b91e194c2",
                "own-1",
                "mes:ba5afd70a63f0f0968a60cbcf710d64f",
                "mes:b7acfffcd9237d2f4e93b0c223b13c6a",
            ],
            id="row content",
        ),
        pytest.param(
            "batch-7",
            [
                "mes:69e535607b17e31da0263d1a81e7818e",
                "mes:fdf60237a3c8f27c92b65bc5c8313123",
                "mes:46fe33708f3e8fc39df6d4b38f43e477",
                "mes:eacdbc2449e4523d0dad6b275573ce1a",
                "mes:bffc0247036c1b1ab43c8b7dc5e0b3dd",
                "own-1",
                "mes:8553f19a648a0da0526f8ee23ec0e497",
                "mes:f6510abbbe0ec68297f4e8e261d2a03d",
            ],
            id="idempotency key",
        ),
    ],
)
def test_ingest_ids_stay_what_earlier_versions_derived(
    key: str | None, expected: list[str]
) -> None:
    # stored ids are compared with those of resends: the derivation must never change
    batch = _batch(idempotency_key=key, measurements=PINNED_ROWS, **PINNED_OTHERS)

    sub, rejected = normalise(batch, KNOWN, NOW)

    assert rejected == []
    assert [r.ingest_id for r in (*sub.measurements, *sub.verdicts, *sub.cost_events)] == expected
