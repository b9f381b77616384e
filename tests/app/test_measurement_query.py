"""Reading measurements back: raw pages with a cursor, and time buckets, on every store."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app import Settings, create_app
from app.api.routes.measurements import bucket_sd, decode_cursor, encode_cursor, parse_width
from app.auth import Role
from ingest.store import BUCKET_ORIGIN, Bucket, HistoryCursor
from tests.support.api import key_headers
from tests.support.databases import fresh_database

CHAR = "line1.turning.diameter"
URL = "/api/v1/measurements"


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, demo_config_path: Path) -> Settings:
    values: dict[str, Any] = {"config": demo_config_path, "data_dir": tmp_path / "data"}
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres")
        values["database"] = {"url": asyncio.run(fresh_database(server.dsn))}
    return Settings.model_validate(values)


@pytest.fixture
def sqlite_settings(tmp_path: Path, demo_config_path: Path) -> Settings:
    return Settings(config=demo_config_path, data_dir=tmp_path / "data")


def _client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), headers=key_headers(settings, Role.VIEWER))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with _client(settings) as test_client:
        yield test_client


@pytest.fixture
def sqlite_client(sqlite_settings: Settings) -> Iterator[TestClient]:
    with _client(sqlite_settings) as test_client:
        yield test_client


def _push(client: TestClient, settings: Settings, rows: list[dict[str, Any]]) -> None:
    headers = key_headers(settings, Role.INGEST)
    response = client.post(URL, json={"measurements": rows}, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(rows)


def _iso(t: datetime) -> str:
    return t.isoformat()


def test_pages_walk_every_row_exactly_once_in_time_order(
    client: TestClient, settings: Settings
) -> None:
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    # three rows per timestamp, so a page boundary falls inside a run of equal times
    rows = [
        {
            "characteristic": CHAR,
            "time": _iso(start + timedelta(seconds=i // 3)),
            "value": 25.0 + i / 1e5,
            "part": f"SN{i:05d}",
            "lot": "L1",
        }
        for i in range(2500)
    ]
    _push(client, settings, rows)

    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"characteristic": CHAR, "limit": 1000}
        if cursor is not None:
            params["cursor"] = cursor
        response = client.get(URL, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            assert "link" not in response.headers
            break
        assert response.headers["link"].endswith('; rel="next"')
        assert f"cursor={cursor}" in response.headers["link"]

    assert [len(p["items"]) for p in pages] == [1000, 1000, 500]
    items = [item for p in pages for item in p["items"]]
    assert sorted(i["part"] for i in items) == [f"SN{i:05d}" for i in range(2500)]
    times = [datetime.fromisoformat(i["time"]) for i in items]
    assert times == sorted(times)
    first = items[0]
    assert (first["quality"], first["lot"], first["source"]) == ("good", "L1", "http:mes")
    assert first["value"] == pytest.approx(25.0, abs=3e-5)


def test_the_link_header_reads_the_next_page(client: TestClient, settings: Settings) -> None:
    start = datetime.now(UTC) - timedelta(minutes=30)
    rows = [
        {
            "characteristic": CHAR,
            "time": _iso(start + timedelta(seconds=i)),
            "value": 25.0 + i / 1e3,
        }
        for i in range(5)
    ]
    _push(client, settings, rows)
    first = client.get(URL, params={"characteristic": CHAR, "limit": 3})
    link = first.headers["link"]
    following = client.get(link[link.index("<") + 1 : link.index(">")])
    assert following.status_code == 200
    assert len(following.json()["items"]) == 2
    assert following.json()["next_cursor"] is None


def test_bucket_statistics_equal_numpy_on_the_same_data(
    client: TestClient, settings: Settings
) -> None:
    width = 60
    lo = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    rng = np.random.default_rng(11)
    offsets = np.sort(rng.uniform(0, 10 * width, 400))
    values = rng.normal(25.0, 0.01, offsets.size)
    rows: list[dict[str, Any]] = [
        {"characteristic": CHAR, "time": _iso(lo + timedelta(seconds=float(o))), "value": float(v)}
        for o, v in zip(offsets, values, strict=True)
    ]
    lone = lo + timedelta(minutes=12, seconds=5)  # a bucket with one value: no sd
    rows.append({"characteristic": CHAR, "time": _iso(lone), "value": 25.5})
    _push(client, settings, rows)

    response = client.get(
        f"{URL}/buckets",
        params={"characteristic": CHAR, "start": _iso(lo), "end": _iso(lo + timedelta(minutes=15)),
                "width": "1m"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["width_seconds"] == width

    expected: dict[datetime, list[float]] = defaultdict(list)
    for row in rows:
        t = datetime.fromisoformat(row["time"])
        expected[t - (t - BUCKET_ORIGIN) % timedelta(seconds=width)].append(row["value"])
    got = {datetime.fromisoformat(b["start"]): b for b in body["buckets"]}
    assert sorted(got) == sorted(expected)
    for start, data in expected.items():
        b, x = got[start], np.array(data)
        assert b["n"] == x.size
        assert b["mean"] == pytest.approx(x.mean(), rel=1e-12)
        assert (b["min"], b["max"]) == (x.min(), x.max())
        if x.size < 2:
            assert b["sd"] is None
        else:
            assert b["sd"] == pytest.approx(x.std(ddof=1), rel=1e-6)


def test_a_range_of_too_many_buckets_asks_for_a_wider_bucket(sqlite_client: TestClient) -> None:
    response = sqlite_client.get(f"{URL}/buckets", params={"characteristic": CHAR, "width": "1s"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "widen the bucket" in response.json()["detail"]
    assert "at least 9 s" in response.json()["detail"]  # 86,400 s over 10,000 buckets


@pytest.mark.parametrize("width", ["0", "1.5", "1w", "-1m", "367d", ""])
def test_a_width_that_is_not_whole_seconds_is_named(sqlite_client: TestClient, width: str) -> None:
    response = sqlite_client.get(f"{URL}/buckets", params={"characteristic": CHAR, "width": width})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("width:")


@pytest.mark.parametrize("cursor", ["nope", "e30", "eyJ0Ijp0cnVlLCJzIjoxfQ", "🙂"])
def test_a_malformed_cursor_is_a_422_naming_the_cursor(
    sqlite_client: TestClient, cursor: str
) -> None:
    response = sqlite_client.get(URL, params={"characteristic": CHAR, "cursor": cursor})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("cursor:")


@pytest.mark.parametrize("path", ["", "/buckets"])
def test_a_time_without_a_utc_offset_is_a_422_naming_the_field(
    sqlite_client: TestClient, path: str
) -> None:
    response = sqlite_client.get(
        URL + path, params={"characteristic": CHAR, "start": "2026-01-01T00:00:00"}
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["query.start"]


@pytest.mark.parametrize("path", ["", "/buckets"])
def test_an_end_not_after_the_start_is_refused(sqlite_client: TestClient, path: str) -> None:
    t = "2026-01-01T00:00:00+00:00"
    response = sqlite_client.get(URL + path, params={"characteristic": CHAR, "start": t, "end": t})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("end:")


@pytest.mark.parametrize("path", ["", "/buckets"])
def test_an_unknown_characteristic_is_a_404(sqlite_client: TestClient, path: str) -> None:
    response = sqlite_client.get(URL + path, params={"characteristic": "no.such"})
    assert response.status_code == 404
    assert "'no.such'" in response.json()["detail"]


@pytest.mark.parametrize(
    "params", [{"end": "0001-01-01T00:00:00+00:00"}, {"start": "0001-01-01T00:00:00+01:00"}]
)
def test_a_range_outside_the_calendar_is_a_422(
    sqlite_client: TestClient, params: dict[str, str]
) -> None:
    response = sqlite_client.get(URL, params={"characteristic": CHAR, **params})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("start:")


def test_a_limit_above_ten_thousand_is_refused(sqlite_client: TestClient) -> None:
    response = sqlite_client.get(URL, params={"characteristic": CHAR, "limit": 10_001})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.limit"


def test_reading_needs_a_key(sqlite_client: TestClient) -> None:
    response = sqlite_client.get(
        URL, params={"characteristic": CHAR}, headers={"Authorization": ""}
    )
    assert response.status_code == 401


def test_a_cursor_round_trips_to_the_microsecond() -> None:
    cursor = HistoryCursor(datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC), 987654321)
    text = encode_cursor(cursor)
    assert decode_cursor(text) == cursor
    assert text.replace("-", "").replace("_", "").isalnum()


@pytest.mark.parametrize(
    ("text", "seconds"), [("60", 60), ("30s", 30), ("1m", 60), ("1h", 3600), ("1d", 86400)]
)
def test_widths_are_read_in_whole_seconds(text: str, seconds: int) -> None:
    assert parse_width(text) == timedelta(seconds=seconds)


def test_a_bucket_of_equal_values_has_zero_sd_despite_rounding() -> None:
    x = [25.1] * 7
    bucket = Bucket(BUCKET_ORIGIN, 7, 25.1, 25.1, 25.1, sum(x), sum(v * v for v in x))
    assert bucket_sd(bucket) == 0.0
    assert bucket_sd(Bucket(BUCKET_ORIGIN, 1, 25.1, 25.1, 25.1, 25.1, 630.01)) is None
