"""parse_payload: camera results to records, tested with tables of real-looking payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest.errors import PayloadError
from ingest.mqtt_payload import MAX_PAYLOAD_BYTES, TopicBinding, lookup, parse_payload

TOPIC = "demo/line2/vision/result"
CAMERA = TopicBinding(
    TOPIC,
    (("features.gap_mm", "line2.vision.gap"), ("features.offset_mm", "line2.vision.offset")),
    verdict_field="verdict",
    process="line2.vision",
)
FEATURES_ONLY = TopicBinding(TOPIC, (("features.gap_mm", "line2.vision.gap"),))
RECEIVED = datetime(2025, 3, 14, 8, 0, 5, tzinfo=UTC)
SHOT_AT = datetime(2025, 3, 14, 8, 0, 0, 123456, tzinfo=UTC)


def _camera(**changes: Any) -> dict[str, Any]:
    """A result as the line 2 vision station sends it; ``None`` removes a key."""
    doc: dict[str, Any] = {
        "serial": "line2-000123",
        "station": "line2.vision",
        "time": "2025-03-14T08:00:00.123456Z",
        "features": {"gap_mm": 1.503, "offset_mm": -0.012},
        "verdict": "OK",
        "defects": [],
        "inspection": "first",
    }
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def _parse(doc: object, binding: TopicBinding = CAMERA) -> Any:
    return parse_payload(binding, json.dumps(doc).encode(), RECEIVED)


def test_a_camera_result_gives_one_measurement_per_field_and_a_verdict() -> None:
    parsed = _parse(_camera(lot="LOT-7"))

    assert parsed.problems == []
    assert [(m.characteristic, m.value) for m in parsed.measurements] == [
        ("line2.vision.gap", 1.503),
        ("line2.vision.offset", -0.012),
    ]
    for m in parsed.measurements:
        assert m.time == SHOT_AT
        assert (m.part, m.lot, m.source) == ("line2-000123", "LOT-7", f"mqtt:{TOPIC}")
    [v] = parsed.verdicts
    assert (v.process, v.part, v.ok, v.first_pass, v.defects) == (
        "line2.vision",
        "line2-000123",
        True,
        True,
        (),
    )
    assert v.time == SHOT_AT


@pytest.mark.parametrize(
    ("word", "ok"),
    [
        ("OK", True),
        ("ok", True),
        (" Ok ", True),
        ("pass", True),
        ("PASS", True),
        (True, True),
        ("NOK", False),
        ("nok", False),
        ("NG", False),
        ("fail", False),
        (False, False),
    ],
)
def test_verdict_words_map_to_ok_or_not(word: object, ok: bool) -> None:
    [v] = _parse(_camera(verdict=word)).verdicts

    assert v.ok is ok


@pytest.mark.parametrize(
    ("inspection", "first_pass"),
    [("first", True), (None, True), ("reinspection", False)],
)
def test_inspection_stage_sets_first_pass(inspection: str | None, first_pass: bool) -> None:
    [v] = _parse(_camera(inspection=inspection)).verdicts

    assert v.first_pass is first_pass


def test_defect_codes_are_carried_on_the_verdict() -> None:
    [v] = _parse(_camera(verdict="NOK", defects=["gap_mm", "scratch"])).verdicts

    assert (v.ok, v.defects) == (False, ("gap_mm", "scratch"))


def test_without_a_time_the_receive_time_is_used() -> None:
    parsed = _parse(_camera(time=None))

    assert {m.time for m in parsed.measurements} == {RECEIVED}


def test_a_time_with_an_offset_is_kept_as_the_same_instant() -> None:
    parsed = _parse(_camera(time="2025-03-14T10:00:00.123456+02:00"))

    assert {m.time for m in parsed.measurements} == {SHOT_AT}


def test_a_numeric_serial_and_the_part_key_are_accepted_as_the_part() -> None:
    assert _parse(_camera(serial=123)).measurements[0].part == "123"
    assert _parse(_camera(serial=None, part="P-9")).measurements[0].part == "P-9"


def test_a_topic_without_a_verdict_binding_gives_measurements_only() -> None:
    parsed = _parse(_camera(verdict="garbage"), FEATURES_ONLY)

    assert [m.characteristic for m in parsed.measurements] == ["line2.vision.gap"]
    assert parsed.verdicts == []
    assert parsed.problems == []


@pytest.mark.parametrize(
    ("features", "bad_field", "problem"),
    [
        pytest.param({"offset_mm": 0.01}, "features.gap_mm", "missing", id="missing feature"),
        pytest.param(
            {"gap_mm": "1.5", "offset_mm": 0.01}, "features.gap_mm", "number", id="string value"
        ),
        pytest.param(
            {"gap_mm": None, "offset_mm": 0.01}, "features.gap_mm", "number", id="null value"
        ),
        pytest.param(
            {"gap_mm": True, "offset_mm": 0.01}, "features.gap_mm", "number", id="bool value"
        ),
        pytest.param(
            {"gap_mm": {"v": 1.5}, "offset_mm": 0.01}, "features.gap_mm", "number", id="object"
        ),
    ],
)
def test_a_bad_feature_is_rejected_alone_and_the_others_are_kept(
    features: dict[str, Any], bad_field: str, problem: str
) -> None:
    parsed = _parse(_camera(features=features))

    assert [m.characteristic for m in parsed.measurements] == ["line2.vision.offset"]
    assert len(parsed.verdicts) == 1
    [error] = parsed.problems
    assert error.field == bad_field
    assert problem in error.problem


def test_a_number_too_large_for_a_float_is_rejected_alone() -> None:
    # NaN is not valid JSON; 1e999 is, and decodes to infinity
    payload = json.dumps(_camera()).replace("1.503", "1e999").encode()

    parsed = parse_payload(CAMERA, payload, RECEIVED)

    assert [m.characteristic for m in parsed.measurements] == ["line2.vision.offset"]
    [error] = parsed.problems
    assert error.field == "features.gap_mm"
    assert "finite" in error.problem


def test_the_whole_features_object_missing_rejects_each_field() -> None:
    parsed = _parse(_camera(features=None))

    assert parsed.measurements == []
    assert [p.field for p in parsed.problems] == ["features.gap_mm", "features.offset_mm"]
    assert len(parsed.verdicts) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"verdict": "maybe"}, "verdict", id="unknown verdict word"),
        pytest.param({"verdict": 1}, "verdict", id="verdict as number"),
        pytest.param({"verdict": None}, "verdict", id="verdict missing"),
        pytest.param({"serial": None}, "serial", id="verdict without serial"),
        pytest.param({"inspection": "third"}, "inspection", id="unknown inspection stage"),
        pytest.param({"defects": "scratch"}, "defects", id="defects not a list"),
        pytest.param({"defects": [1, 2]}, "defects", id="defects not text"),
    ],
)
def test_a_bad_verdict_is_rejected_alone_and_the_measurements_are_kept(
    changes: dict[str, Any], field: str
) -> None:
    parsed = _parse(_camera(**changes))

    assert len(parsed.measurements) == 2
    assert parsed.verdicts == []
    [error] = parsed.problems
    assert error.field == field


@pytest.mark.parametrize(
    ("payload", "field", "problem"),
    [
        pytest.param(b'{"serial": "x", ', "payload", "not valid JSON", id="truncated JSON"),
        pytest.param(b"\xff\xfe\x00", "payload", "not valid JSON", id="binary garbage"),
        pytest.param(b"", "payload", "not valid JSON", id="empty"),
        pytest.param(b"[1.5, 1.6]", "payload", "JSON object", id="a list"),
        pytest.param(b"1.503", "payload", "JSON object", id="a bare number"),
        pytest.param(
            json.dumps(_camera(time="yesterday")).encode(), "time", "ISO 8601", id="bad time"
        ),
        pytest.param(json.dumps(_camera(time=1741939200)).encode(), "time", "ISO", id="epoch"),
        pytest.param(
            json.dumps(_camera(time="2025-03-14T08:00:00")).encode(),
            "time",
            "UTC offset",
            id="naive time",
        ),
        pytest.param(
            json.dumps(_camera(serial=["a"])).encode(), "serial", "text", id="serial not text"
        ),
        pytest.param(
            b'{"pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}',
            "payload",
            "exceeds",
            id="oversize payload",
        ),
    ],
)
def test_a_bad_message_is_refused_whole_naming_the_field(
    payload: bytes, field: str, problem: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_payload(CAMERA, payload, RECEIVED)

    assert caught.value.field == field
    assert problem in caught.value.problem


def test_a_time_far_in_the_future_refuses_the_whole_message_naming_time() -> None:
    # A wrong camera clock is a message-level problem like any other bad time; it must not
    # come back as one problem per feature, each blaming the feature.
    ahead = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    with pytest.raises(PayloadError) as caught:
        parse_payload(CAMERA, json.dumps(_camera(time=ahead)).encode(), datetime.now(UTC))

    assert caught.value.field == "time"


def test_a_redelivered_message_gets_the_same_ingest_ids() -> None:
    payload = json.dumps(_camera()).encode()

    first = parse_payload(CAMERA, payload, RECEIVED)
    again = parse_payload(CAMERA, payload, RECEIVED + timedelta(minutes=3))

    assert [m.ingest_id for m in first.measurements] == [m.ingest_id for m in again.measurements]
    assert first.verdicts[0].ingest_id == again.verdicts[0].ingest_id


def test_ingest_ids_differ_across_serials_and_across_fields() -> None:
    a = _parse(_camera(serial="line2-000123"))
    b = _parse(_camera(serial="line2-000124"))

    ids = [r.ingest_id for p in (a, b) for r in (*p.measurements, *p.verdicts)]
    assert len(set(ids)) == len(ids) == 6


def test_ingest_ids_differ_across_topics_for_the_same_serial() -> None:
    other = TopicBinding("demo/line3/vision/result", CAMERA.fields, "verdict", "line3.vision")

    assert _parse(_camera()).measurements[0].ingest_id != (
        _parse(_camera(), other).measurements[0].ingest_id
    )


def test_a_reinspection_of_the_same_serial_gets_its_own_ingest_ids() -> None:
    # After rework the same part is inspected again: a new result that must not be
    # mistaken for a redelivery of the first one, or first-pass yield never sees it.
    first = _parse(_camera(verdict="NOK", defects=["gap_mm"]))
    again = _parse(
        _camera(
            time="2025-03-14T08:00:03Z",
            features={"gap_mm": 1.51, "offset_mm": 0.0},
            inspection="reinspection",
        )
    )

    assert first.verdicts[0].ingest_id != again.verdicts[0].ingest_id
    assert first.measurements[0].ingest_id != again.measurements[0].ingest_id


def test_messages_without_serial_or_time_are_told_apart_by_receive_time() -> None:
    payload = json.dumps(_camera(serial=None, time=None)).encode()

    first = parse_payload(FEATURES_ONLY, payload, RECEIVED)
    later = parse_payload(FEATURES_ONLY, payload, RECEIVED + timedelta(seconds=1))

    assert first.measurements[0].ingest_id != later.measurements[0].ingest_id


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("verdict", "OK"),
        ("features.gap_mm", 1.503),
        ("features", {"gap_mm": 1.503, "offset_mm": -0.012}),
        ("a.b.c", 0),
    ],
)
def test_lookup_follows_dotted_paths(path: str, expected: object) -> None:
    doc = _camera(a={"b": {"c": 0}})

    assert lookup(doc, path) == expected


@pytest.mark.parametrize(
    "path", ["features.width_mm", "features.gap_mm.x", "verdict.value", "nothing", "a.b.c.d"]
)
def test_lookup_names_the_path_that_is_missing(path: str) -> None:
    with pytest.raises(PayloadError) as caught:
        lookup(_camera(a={"b": {"c": 0}}), path)

    assert caught.value.field == path
    assert caught.value.problem == "missing from the payload"
