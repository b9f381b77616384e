"""AQDEF import through the real API (``spcmon import FILE.dfq``), on the demo plant."""

from __future__ import annotations

import csv
import io
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from fastapi.testclient import TestClient

from app import Settings, create_app
from app.aqdef_import import AqdefImportError, load_mapping
from app.auth import KeyRing, Role
from app.cli import main
from app.local_broker import free_port
from app.transfer import TransferError, export_csv, import_aqdef, write_rejections
from tests.support.api import key_headers

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "aqdef"
DIAMETER, LENGTH, ROUGHNESS = (
    "line1.turning.diameter", "line1.turning.length", "line1.grinding.roughness"
)  # fmt: skip
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _copy(tmp_path: Path, *names: str) -> Path:
    for name in names:
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path / names[0]


def _count(client: TestClient, characteristic: str) -> int:
    count = client.app.state.service.store.count_measurements  # type: ignore[attr-defined]
    return int(client.portal.call(count, characteristic))  # type: ignore[union-attr]


def _exported(client: TestClient, characteristic: str) -> list[dict[str, str]]:
    out = io.StringIO()
    export_csv(client, characteristic, T0 - timedelta(days=1), T0 + timedelta(days=1), out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_mapping_more_characteristics_on_a_rerun_stores_only_the_new_values(
    client: TestClient, tmp_path: Path
) -> None:
    path = _copy(tmp_path, "compact.dfq")
    first = import_aqdef(path, client, progress=False, zone=UTC)
    assert first.accepted == 12  # D1 by its name, line1.turning.length by its id
    assert first.unmapped == [
        "characteristic 3 (K2001 'R9', K2002 'Rauheit Ra'): 5 value(s) not imported: no "
        "characteristic has the id or name 'R9' or 'Rauheit Ra'; map it with --map R9=ID"
    ]
    assert [line for line, _ in first.rejected] == [21, 22, 23, 25, 26]
    assert first.rejected[0][1].startswith("K0001/3: not mapped: no characteristic has")
    mapped = import_aqdef(path, client, progress=False, zone=UTC, mapping={"R9": ROUGHNESS})
    assert (mapped.accepted, mapped.rejected, mapped.unmapped) == (17, [], [])
    import_aqdef(path, client, progress=False, zone=UTC, mapping={"R9": ROUGHNESS})
    assert [_count(client, c) for c in (DIAMETER, LENGTH, ROUGHNESS)] == [6, 6, 5]


def test_a_value_marked_invalid_is_stored_as_bad_and_times_are_read_in_the_zone_given(
    client: TestClient, tmp_path: Path
) -> None:
    path = _copy(tmp_path, "compact.dfq")
    report = import_aqdef(path, client, progress=False, zone=ZoneInfo("Europe/Berlin"))
    rows = _exported(client, DIAMETER)
    assert [(r["time"], r["quality"], r["lot"]) for r in rows[1:4]] == [
        ("2026-11-02T07:01:00Z", "good", "L-4711"),  # 08:01 in Berlin (CET)
        ("2026-11-02T07:02:00Z", "bad", "L-4711"),  # K0002 255: stored, not charted
        ("2026-11-02T07:03:00Z", "good", "L-4712"),
    ]
    assert report.notes == [
        "1 value(s) marked invalid in the file (K0002 = 255/256) were sent with quality bad: "
        "stored, not charted",
        "times without an offset were read as Europe/Berlin",
    ]


def test_file_limits_that_differ_from_the_service_s_are_a_warning_not_a_failure(
    client: TestClient, tmp_path: Path
) -> None:
    report = import_aqdef(_copy(tmp_path, "compact.dfq"), client, progress=False, zone=UTC)
    assert report.warnings == [
        "characteristic 2 (K2001 'line1.turning.length', K2002 'Länge') -> line1.turning.length: "
        "the file's limits (LSL 119.7, USL 120.3) differ from the service's (LSL 119.8, "
        "USL 120.2); the service's limits are used"
    ]
    assert _count(client, LENGTH) == 6
    service = client.get(f"/api/v1/characteristics/{LENGTH}").json()
    assert (service["lsl"], service["usl"]) == (119.8, 120.2)


def _dfq(tmp_path: Path, values: list[float], start: datetime, name: str = "run.dfq") -> Path:
    lines = ["K0100 1", "K1001 SH-100", f"K2001 {DIAMETER}", "K2110 24.95", "K2111 25.05"]
    lines += [f"{v:.3f}\x140\x14{start + timedelta(seconds=i):%d.%m.%Y/%H:%M:%S}"
              for i, v in enumerate(values)]  # fmt: skip
    path = tmp_path / name
    path.write_bytes("\r\n".join(lines).encode("cp1252"))
    return path


def test_an_import_is_history_charted_without_alarms_unless_asked_live(
    client: TestClient, tmp_path: Path
) -> None:
    values = [25 + (i % 7) * 0.001 for i in range(30)] + [25.04] * 10  # in control, then off
    path = _dfq(tmp_path, values, datetime(2026, 11, 2, 8, 0))
    assert import_aqdef(path, client, progress=False, zone=UTC).accepted == 40
    assert client.get("/api/v1/alarms").json() == []
    status = client.get(f"/api/v1/characteristics/{DIAMETER}/status").json()
    assert status["limits"]["version"] == 1  # charted all the same
    live = _dfq(tmp_path, [25.04] * 3, datetime(2026, 11, 2, 9, 0), "live.dfq")
    import_aqdef(live, client, progress=False, zone=UTC, historical=False)
    assert client.get("/api/v1/alarms").json() != []


def test_a_file_the_gauge_has_grown_stores_only_its_new_values_when_imported_again(
    client: TestClient, tmp_path: Path
) -> None:
    values = [25 + (i % 7) * 0.001 for i in range(50)]
    start = datetime(2026, 11, 2, 8, 0)
    path = _dfq(tmp_path, values[:40], start)
    import_aqdef(path, client, progress=False, zone=UTC)
    path = _dfq(tmp_path, values, start)  # the same file, ten parts longer
    import_aqdef(path, client, progress=False, zone=UTC)
    assert _count(client, DIAMETER) == 50


def test_every_bad_line_is_listed_by_line_and_kfield_and_the_good_values_stored(
    client: TestClient, tmp_path: Path
) -> None:
    path = _copy(tmp_path, "bad_lines.dfq")
    report = import_aqdef(path, client, progress=False, zone=UTC)
    assert report.accepted == 4  # 11/1, 11/2, 13/2 (attribute 7: imported as good), 20/2
    assert sorted(report.rejected) == [
        (10, "K2004/3: attributive characteristic (type 1): its 1 value(s) are not read"),
        (12, "K0001/1: '2x.5' is not a number"),
        (12, "K0004/2: '31.11.2026/08:01:00' is not a valid date and time (day is out of "
             "range for month)"),
        (13, "K0004/1: no date/time; the service needs one for every value"),
        (14, "line: neither a K-field nor a value line"),
        (15, "K12: not a K-field line (Kxxxx[/n] value)"),
        (17, "K0001/5: no characteristic 5 is described (no K2xxx/5 field)"),
        (19, "K0002/1: 'x' is not an integer attribute"),
    ]  # fmt: skip
    assert report.warnings == [
        "line 1, K0100: declares 4 characteristic(s), the file describes 3",
        "line 5, K2110/1: 'abc' is not a number",
        "line 16, K0004/5: no K0001 value of this characteristic before it",
    ]
    assert "K0002 attribute(s) 7 are not interpreted: those values were imported as good" in (
        report.notes
    )
    out = write_rejections(report, path)
    assert out.name == "bad_lines.dfq.rejected.csv"
    assert out.read_text(encoding="utf-8").splitlines()[:2] == [
        "line,reason",
        "10,K2004/3: attributive characteristic (type 1): its 1 value(s) are not read",
    ]


def test_a_dfd_dfx_pair_imports_from_either_file_and_a_missing_twin_is_refused(
    client: TestClient, tmp_path: Path
) -> None:
    _copy(tmp_path, "pair.dfd")
    shutil.copy(FIXTURES / "pair.dfx", tmp_path / "pair.DFX")
    report = import_aqdef(tmp_path / "pair.DFX", client, progress=False, zone=UTC)
    assert (report.accepted, report.rejected, report.warnings) == (6, [], [])
    again = import_aqdef(tmp_path / "pair.dfd", client, progress=False, zone=UTC)
    assert again.accepted == 6
    assert [_count(client, c) for c in (DIAMETER, LENGTH)] == [3, 3]  # stored once
    (tmp_path / "pair.dfd").unlink()
    with pytest.raises(TransferError, match=r"pair\.dfd is missing beside it"):
        import_aqdef(tmp_path / "pair.DFX", client, progress=False)


def test_an_ingest_key_sends_k2001_as_the_id_and_says_what_it_could_not_compare(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    client.headers.update(key_headers(settings, Role.INGEST))
    report = import_aqdef(_copy(tmp_path, "pair.dfd", "pair.dfx"), client, progress=False, zone=UTC)
    assert (report.accepted, report.rejected) == (6, [])
    assert report.warnings == [
        "the key may not list the service's characteristics (viewer role): each K2001 (else "
        "K2002) was sent as the characteristic id; names, limits and units were not compared"
    ]


def test_a_viewer_key_cannot_import(client: TestClient, settings: Settings, tmp_path: Path) -> None:
    client.headers.update(key_headers(settings, Role.VIEWER))
    with pytest.raises(TransferError, match="needs a key with the ingest role"):
        import_aqdef(_copy(tmp_path, "compact.dfq"), client, progress=False, zone=UTC)


def test_a_file_that_is_not_aqdef_is_refused_before_anything_is_sent(
    client: TestClient, tmp_path: Path
) -> None:
    path = tmp_path / "photo.dfq"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(TransferError, match="NUL bytes"):
        import_aqdef(path, client, progress=False)


@pytest.mark.parametrize(
    ("name", "text"),
    [("map.yaml", "R9: line1.grinding.roughness\nLänge: line1.turning.length\n"),
     ("map.csv", "aqdef,characteristic\nR9,line1.grinding.roughness\n"
                 "Länge, line1.turning.length\n")],
)  # fmt: skip
def test_a_mapping_file_is_yaml_or_csv(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert load_mapping(path) == {"R9": ROUGHNESS, "Länge": LENGTH}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [("map.yaml", "- a\n- b\n", "expected a mapping"), ("map.yaml", "a: [", "not valid YAML"),
     ("map.csv", "from,to\na,b\n", "must name 'aqdef,characteristic'")],
)  # fmt: skip
def test_a_mapping_file_that_cannot_be_used_says_why(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AqdefImportError, match=message):
        load_mapping(path)


@contextmanager
def _serving(settings: Settings) -> Iterator[str]:
    """The service on a free port in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive(), "the service stopped while starting"
            assert time.monotonic() < deadline, "the service did not start in 60 s"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def test_the_cli_imports_a_dfq_over_http_and_lists_what_it_left_out(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, token = KeyRing(settings.keys_file).create("importer", Role.ADMIN)
    path = _copy(tmp_path, "compact.dfq")
    with _serving(settings) as url:
        common = ["import", str(path), "--api", url, "--key", token, "--quiet", "--tz", "UTC"]
        assert main(common) == 3  # R9 is not mapped
        out = capsys.readouterr()
        assert out.out.splitlines()[0] == "12 measurements accepted, 5 rejected"
        assert "not mapped: characteristic 3 (K2001 'R9', K2002 'Rauheit Ra'): 5 value(s)" in (
            out.out
        )
        assert "warning: characteristic 2 (K2001 'line1.turning.length'" in out.out
        assert "rejected rows (line, reason) written to" in out.err
        assert (tmp_path / "compact.dfq.rejected.csv").read_text().count("K0001/3") == 5
        assert main([*common, "--map", f"R9={ROUGHNESS}"]) == 0
        assert capsys.readouterr().out.splitlines()[0] == "17 measurements accepted, 0 rejected"


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--map", "R9"], "give K2001=ID"), (["--tz", "Mars/Olympus"], "unknown time zone")],
)
def test_the_cli_refuses_a_bad_aqdef_option(
    option: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["import", "x.dfq", *option])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
