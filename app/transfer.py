"""CSV and AQDEF import, CSV export, through a running service's HTTP API (``spcmon
import/export``).

Import goes through the API on purpose: the running service owns the engine state, so
imported points are validated, stored, de-duplicated and charted exactly like an MES push.
Each batch carries an idempotency key derived from the file's content and the batch's
position, so re-running an interrupted import stores nothing twice.

CSV columns (header row required, any order): ``characteristic``, ``time`` (ISO 8601
with an offset, e.g. ``2026-11-02T08:00:00Z``), ``value``; optional ``part``, ``lot``,
``quality`` (good, uncertain, bad: only good values are charted), ``ingest_id`` (the
row's identity: an export keeps it, so importing an export again stores nothing twice).
Other columns (such as the ``source`` an export writes) are ignored. Imported rows are
pushed as history by default: charted, never alarmed.

AQDEF files (``.dfq``, or a ``.dfd`` description beside its ``.dfx`` values) go through the
same push: ``ingest.aqdef`` reads them, ``app.aqdef_import`` maps their characteristics onto
the service's and builds the rows (see there for what is decided and why).
"""

from __future__ import annotations

import csv
import hashlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, TextIO

import httpx
from tqdm import tqdm

from app import aqdef_import

REQUIRED = ("characteristic", "time", "value")
OPTIONAL = ("part", "lot", "quality", "ingest_id")
QUALITIES = ("good", "uncertain", "bad")
BATCH_ROWS = 5000
RETRIES = 5
AQDEF_SUFFIXES = (".dfq", ".dfd", ".dfx")
Row = dict[str, Any]


class TransferError(Exception):
    """The transfer cannot go on; the message says why and what to do."""


@dataclass
class ImportReport:
    accepted: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    unmapped: list[str] = field(default_factory=list)  # AQDEF characteristics left out
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """The lines printed after the counts (none for a plain CSV import)."""
        return (
            self.notes
            + [f"not mapped: {u}" for u in self.unmapped]
            + [f"warning: {w}" for w in self.warnings]
        )


def _header(reader: csv.DictReader[str], path: Path) -> None:
    columns = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise TransferError(
            f"{path}: the header lacks the column(s) {', '.join(missing)} "
            f"(needed: {', '.join(REQUIRED)}; optional: {', '.join(OPTIONAL)})"
        )


def _row(raw: dict[str, str | None]) -> dict[str, Any]:
    """One CSV row as a push row; ``ValueError`` names the column and the problem."""
    row: dict[str, Any] = {}
    characteristic = (raw.get("characteristic") or "").strip()
    if not characteristic:
        raise ValueError("characteristic: empty")
    row["characteristic"] = characteristic
    text = (raw.get("time") or "").strip()
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"time: {text!r} is not an ISO 8601 date-time") from None
    if stamp.tzinfo is None:
        raise ValueError(f"time: {text!r} has no UTC offset (add Z or +08:00)")
    row["time"] = stamp.isoformat()
    try:
        value = float((raw.get("value") or "").strip())
    except ValueError:
        raise ValueError(f"value: {raw.get('value')!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"value: {value} is not finite")
    row["value"] = value
    for name in OPTIONAL:
        if raw.get(name):
            row[name] = str(raw[name]).strip()
    if row.get("quality", "good") not in QUALITIES:
        raise ValueError(f"quality: {row['quality']!r} is not one of {', '.join(QUALITIES)}")
    return row


def _csv_rows(reader: csv.DictReader[str], report: ImportReport) -> Iterator[tuple[int, Row]]:
    for raw in reader:
        try:
            row = _row(raw)
        except ValueError as exc:
            report.rejected.append((reader.line_num, str(exc)))
            continue
        yield reader.line_num, row


def _batches(rows: Iterable[tuple[int, Row]]) -> Iterator[tuple[list[Row], list[int]]]:
    batch: list[Row] = []
    lines: list[int] = []
    for line, row in rows:
        batch.append(row)
        lines.append(line)
        if len(batch) == BATCH_ROWS:
            yield batch, lines
            batch, lines = [], []
    if batch:
        yield batch, lines


def _push(
    client: httpx.Client,
    rows: Iterable[tuple[int, Row]],
    report: ImportReport,
    key: str,
    historical: bool,
    advance: Callable[[int], object],
) -> None:
    """Post the rows in batches of ``BATCH_ROWS``; ``advance`` gets each batch's last line."""
    for number, (batch, lines) in enumerate(_batches(rows)):
        body = {"idempotency_key": f"{key}:{number}", "historical": historical,
                "measurements": batch}  # fmt: skip
        _record(report, _post(client, body), lines)
        advance(lines[-1])


def _post(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    """POST with retries on connection errors and 5xx (the batch key makes resends safe)."""
    for attempt in range(RETRIES):
        try:
            response = client.post("/api/v1/measurements", json=body)
        except httpx.TransportError as exc:
            if attempt == RETRIES - 1:
                raise TransferError(f"cannot reach the service: {exc}") from exc
        else:
            if response.status_code < 500:
                return response
            if attempt == RETRIES - 1:
                raise TransferError(f"the service answered {response.status_code} repeatedly")
        time.sleep(min(2.0**attempt, 10.0))
    raise AssertionError("unreachable")


def _problem(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:500]


def import_csv(
    path: Path, client: httpx.Client, progress: bool = True, historical: bool = True
) -> ImportReport:
    """Push the measurements of a CSV file; returns what was accepted and rejected.

    ``historical`` (the default) charts the rows without raising alarms or live events.
    """
    content = path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()[:24]
    report = ImportReport()
    total = max(content.count(b"\n") - 1, 0)
    with (
        path.open(newline="", encoding="utf-8-sig") as handle,
        tqdm(total=total, unit="rows", disable=not progress) as bar,
    ):
        reader = csv.DictReader(handle)
        _header(reader, path)
        rows = _csv_rows(reader, report)
        _push(client, rows, report, f"import:{digest}", historical,
              lambda _: bar.update(reader.line_num - 1 - bar.n))  # fmt: skip
    return report


def is_aqdef(path: Path) -> bool:
    """Whether ``spcmon import`` reads the file as AQDEF (by its suffix, any case)."""
    return path.suffix.lower() in AQDEF_SUFFIXES


def import_aqdef(
    path: Path,
    client: httpx.Client,
    progress: bool = True,
    historical: bool = True,
    mapping: Mapping[str, str] | None = None,
    map_file: Path | None = None,
    zone: tzinfo | None = None,
    encoding: str | None = None,
) -> ImportReport:
    """Push the values of an AQDEF file (``.dfq``, or a ``.dfd``/``.dfx`` pair).

    ``mapping`` (K2001 or K2002 -> characteristic id) wins over ``map_file``, which wins over
    matching ids and names; ``zone`` reads times written without an offset (None: local).
    """
    try:
        parsed, digest, values_name = aqdef_import.read(path, encoding)
        explicit = aqdef_import.explicit_mapping(mapping, map_file)
    except aqdef_import.AqdefImportError as exc:
        raise TransferError(str(exc)) from exc
    service = _service_characteristics(client)
    plan = aqdef_import.plan(parsed, service, explicit)
    found = aqdef_import.describe(parsed, plan, service is not None, values_name, zone)
    report = ImportReport(rejected=found.rejected, unmapped=found.unmapped,
                          warnings=found.warnings, notes=found.notes)  # fmt: skip
    rows = aqdef_import.push_rows(parsed, plan, zone, digest, report.rejected)
    last = max((v.line for v in parsed.values), default=0)
    with tqdm(total=last, unit="lines", disable=not progress) as bar:
        _push(client, rows, report, f"aqdef:{digest}", historical,
              lambda line: bar.update(line - bar.n))  # fmt: skip
    return report


def _service_characteristics(client: httpx.Client) -> list[dict[str, Any]] | None:
    """The service's characteristics; None when the key may not read them (ingest only)."""
    try:
        response = client.get("/api/v1/characteristics")
    except httpx.TransportError as exc:
        raise TransferError(f"cannot reach the service: {exc}") from exc
    if response.status_code == 403:
        return None
    if response.status_code != 200:
        raise TransferError(
            f"cannot list the characteristics ({response.status_code}): {_problem(response)}"
        )
    return list(response.json())


def _record(report: ImportReport, response: httpx.Response, lines: list[int]) -> None:
    if response.status_code in (401, 403):
        raise TransferError(
            f"the service refused the key ({response.status_code}): {_problem(response)}; "
            "importing needs a key with the ingest role (SPCMON_API_KEY)"
        )
    answer = response.json() if response.status_code in (202, 422) else {}
    items = answer.get("rejected", answer.get("errors", []))
    if response.status_code not in (202, 422) or any("row" not in i for i in items):
        raise TransferError(f"unexpected answer {response.status_code}: {_problem(response)}")
    report.accepted += int(answer.get("accepted", 0))
    for item in items:
        where = str(item["row"])  # "measurements[3]"
        index = int(where[where.find("[") + 1 : -1]) if where.endswith("]") else -1
        line = lines[index] if 0 <= index < len(lines) else 0
        report.rejected.append((line, f"{item.get('field')}: {item.get('reason')}"))


def write_rejections(report: ImportReport, path: Path) -> Path:
    """The rejected rows' line numbers and reasons, beside the imported file."""
    out = path.with_name(path.name + ".rejected.csv")
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "reason"])
        writer.writerows(sorted(report.rejected))
    return out


def export_csv(
    client: httpx.Client, characteristic: str, start: datetime, end: datetime, out: TextIO
) -> int:
    """Write a characteristic's measurements of ``[start, end)`` as CSV; returns the rows."""
    writer = csv.writer(out)
    writer.writerow(
        ["characteristic", "time", "value", "quality", "part", "lot", "source", "ingest_id"]
    )
    params: dict[str, str] = {
        "characteristic": characteristic,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "limit": "10000",
    }
    written = 0
    while True:
        response = client.get("/api/v1/measurements", params=params)
        if response.status_code != 200:
            raise TransferError(f"export refused ({response.status_code}): {_problem(response)}")
        page = response.json()
        for m in page["items"]:
            writer.writerow(
                [characteristic, m["time"], repr(m["value"]), m.get("quality", ""),
                 m.get("part") or "", m.get("lot") or "", m.get("source", ""),
                 m.get("ingest_id", "")]
            )  # fmt: skip
        written += len(page["items"])
        if not page.get("next_cursor"):
            return written
        params["cursor"] = page["next_cursor"]
