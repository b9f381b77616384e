"""CSV import and export through the real API (the CLI's `spcmon import` / `export`)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import Settings
from app.auth import Role
from app.transfer import TransferError, export_csv, import_csv, write_rejections
from tests.support.api import key_headers

CHAR = "line1.turning.diameter"
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _csv(path: Path, rows: list[list[str]], header: str = "time,characteristic,value,part") -> Path:
    with path.open("w", newline="") as handle:
        handle.write(header + "\n")
        csv.writer(handle).writerows(rows)
    return path


def _rows(n: int) -> list[list[str]]:
    return [
        [(T0 + timedelta(seconds=i)).isoformat(), CHAR, f"{25 + (i % 7) * 0.001:.3f}", f"P{i}"]
        for i in range(n)
    ]


def test_an_import_stores_every_row_once_even_when_run_twice(
    client: TestClient, tmp_path: Path
) -> None:
    path = _csv(tmp_path / "history.csv", _rows(12_000))  # three batches
    first = import_csv(path, client, progress=False)
    again = import_csv(path, client, progress=False)
    assert (first.accepted, first.rejected) == (12_000, [])
    assert again.rejected == []
    status = client.get(f"/api/v1/characteristics/{CHAR}/status").json()
    assert status["capability"]["n"] == 100  # charted: the window is full
    count = client.app.state.service.store.count_measurements  # type: ignore[attr-defined]
    assert client.portal.call(count, CHAR) == 12_000  # type: ignore[union-attr]


def test_bad_rows_are_listed_by_line_and_the_good_ones_stored(
    client: TestClient, tmp_path: Path
) -> None:
    rows = _rows(5)
    rows[1][2] = "abc"  # line 3
    rows[2][0] = "2026-11-02T08:00:02"  # line 4: no offset
    rows[3][1] = "no.such.characteristic"  # line 5: refused by the service
    path = _csv(tmp_path / "mixed.csv", rows)
    report = import_csv(path, client, progress=False)
    assert report.accepted == 2
    assert sorted(report.rejected) == [
        (3, "value: 'abc' is not a number"),
        (4, "time: '2026-11-02T08:00:02' has no UTC offset (add Z or +08:00)"),
        (5, "characteristic: unknown characteristic 'no.such.characteristic'"),
    ]
    out = write_rejections(report, path)
    assert out.read_text().splitlines()[0] == "line,reason"


def test_a_file_without_a_needed_column_is_refused_before_anything_is_sent(
    client: TestClient, tmp_path: Path
) -> None:
    path = _csv(tmp_path / "x.csv", [["2026-11-02T08:00:00Z", CHAR]], header="time,characteristic")
    with pytest.raises(TransferError, match=r"lacks the column\(s\) value"):
        import_csv(path, client, progress=False)


def test_a_viewer_key_cannot_import(client: TestClient, settings: Settings, tmp_path: Path) -> None:
    client.headers.update(key_headers(settings, Role.VIEWER))
    with pytest.raises(TransferError, match="needs a key with the ingest role"):
        import_csv(_csv(tmp_path / "v.csv", _rows(3)), client, progress=False)


def test_export_writes_back_what_was_imported(client: TestClient, tmp_path: Path) -> None:
    from app.transfer import export_csv

    import_csv(_csv(tmp_path / "h.csv", _rows(2_500)), client, progress=False)
    out = io.StringIO()
    written = export_csv(client, CHAR, T0, T0 + timedelta(hours=1), out)
    assert written == 2_500
    exported = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [float(r["value"]) for r in exported] == [float(r[2]) for r in _rows(2_500)]
    assert exported[0]["part"] == "P0"


def _shifted(n: int) -> list[list[str]]:
    """In control, then far off: live data would raise rule-1 alarms."""
    rows = _rows(n)
    for row in rows[30:]:
        row[2] = "25.5"
    return rows


def test_an_import_is_history_charted_without_alarms_unless_asked_live(
    client: TestClient, tmp_path: Path
) -> None:
    path = _csv(tmp_path / "old.csv", _shifted(40))
    assert import_csv(path, client, progress=False).accepted == 40
    assert client.get("/api/v1/alarms").json() == []
    status = client.get(f"/api/v1/characteristics/{CHAR}/status").json()
    assert status["limits"]["version"] == 1  # charted all the same
    live = [
        [(T0 + timedelta(hours=1, seconds=i)).isoformat(), CHAR, "25.5", f"L{i}"] for i in range(3)
    ]
    import_csv(_csv(tmp_path / "live.csv", live), client, progress=False, historical=False)
    [incident] = client.get("/api/v1/alarms").json()
    assert incident["severity"] == "critical"  # 25.5 is beyond the UCL


def test_an_export_imported_again_keeps_each_value_s_quality(
    client: TestClient, tmp_path: Path
) -> None:
    rows = [
        {"characteristic": CHAR, "value": v, "time": (T0 + timedelta(seconds=i)).isoformat(),
         "quality": q}
        for i, (v, q) in enumerate([(25.0, "good"), (99.0, "bad"), (25.1, "uncertain")])
    ]  # fmt: skip
    assert client.post("/api/v1/measurements", json={"measurements": rows}).status_code == 202
    out = io.StringIO()
    export_csv(client, CHAR, T0, T0 + timedelta(minutes=1), out)
    path = tmp_path / "roundtrip.csv"
    path.write_text(out.getvalue())
    assert [r["quality"] for r in csv.DictReader(io.StringIO(out.getvalue()))] == [
        "good",
        "bad",
        "uncertain",
    ]
    report = import_csv(path, client, progress=False)
    assert (report.accepted, report.rejected) == (3, [])  # the same rows: stored once
    again = io.StringIO()
    assert export_csv(client, CHAR, T0, T0 + timedelta(minutes=1), again) == 3
