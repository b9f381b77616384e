"""What the service signalled, read through its HTTP API for :mod:`simulators.scorer`.

Every function takes a client whose base URL and ``Authorization`` header are set
(production: ``httpx.Client(base_url=..., headers={"Authorization": "Bearer <key>"})``;
tests: FastAPI's ``TestClient``, an ``httpx2.Client``, hence the small ``ReadClient``
protocol rather than ``httpx.Client`` itself). A non-2xx answer or a transport failure raises
:class:`ServiceReadError` naming the characteristic, the status and the problem detail.

The chart answers at most 5,000 points; the reader follows ``next_cursor`` and marks each
point with its page. The service computes each page on its own: run rules, EWMA and
CUSUM restart at every page (and an I chart's first moving range of a page is missing),
so a run longer than one page is not judged exactly as the live engine judged it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from simulators.scorer import AlarmSeen, ChartPoint, GroundTruth, Observed

CHART = "/api/v1/characteristics/{id}/chart"
ALARMS = "/api/v1/alarms"
MAX_ALARMS = 10_000  # the alarms API's largest page
MAX_PAGES = 10_000  # 50 million points: a cursor that never ends is a service bug
MARGIN = timedelta(seconds=1)


class ServiceReadError(RuntimeError):
    """The service refused or failed a read; the message says which and why."""


class _Answer(Protocol):
    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


class ReadClient(Protocol):
    """What the reader needs of its client: ``httpx.Client`` or FastAPI's ``TestClient``."""

    def get(self, url: str, *, params: Mapping[str, str]) -> _Answer: ...


def read_chart_points(
    client: ReadClient, characteristic_id: str, start: datetime, end: datetime
) -> list[ChartPoint]:
    """Every chart point of ``characteristic_id`` with ``start <= time < end``, in time order,
    following the cursor across pages (``ChartPoint.page`` counts them from 0)."""
    points: list[ChartPoint] = []
    params = {"start": _iso(start), "end": _iso(end)}
    cursor: str | None = None
    for page in range(MAX_PAGES):
        query = params if cursor is None else {**params, "cursor": cursor}
        answer = _get(client, CHART.format(id=characteristic_id), query, characteristic_id)
        try:
            points += _page_points(answer, page)
            cursor = answer["next_cursor"] if answer["truncated"] else None
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ServiceReadError(
                f"chart of {characteristic_id!r}: unexpected answer ({exc!r})"
            ) from exc
        if cursor is None:
            return points
    raise ServiceReadError(
        f"chart of {characteristic_id!r}: still truncated after {MAX_PAGES} pages"
    )


def read_alarms(client: ReadClient, characteristic_id: str) -> list[AlarmSeen]:
    """Every alarm of ``characteristic_id`` (any state), oldest first."""
    query = {"state": "all", "characteristic": characteristic_id, "limit": str(MAX_ALARMS)}
    answer = _get(client, ALARMS, query, characteristic_id)
    try:
        alarms = [_alarm(a) for a in answer]
    except (KeyError, TypeError, ValueError) as exc:
        raise ServiceReadError(
            f"alarms of {characteristic_id!r}: unexpected answer ({exc!r})"
        ) from exc
    if len(alarms) >= MAX_ALARMS:  # newest first: older ones were left out
        raise ServiceReadError(
            f"alarms of {characteristic_id!r}: {MAX_ALARMS} or more; resolve old ones first"
        )
    return sorted(alarms, key=lambda a: (a.opened_at, a.id))


def read_signals(
    client: ReadClient, truth: GroundTruth, end: datetime | None = None
) -> dict[str, Observed]:
    """Chart points and alarms of every characteristic of ``truth`` over the run.

    The window is [``started_at`` - 1 s, ``end``): by default 1 s after the latest of now,
    the run's nominal last part (``started_at`` + parts x takt, which faster-than-real-time
    runs may stamp ahead of the clock) and every fault time. Alarms are kept when they were
    open at some time in the window (opened before its end, last updated after its start).
    """
    start = truth.started_at - MARGIN
    stop = end if end is not None else default_end(truth)
    out: dict[str, Observed] = {}
    for char in truth.characteristics:
        points = read_chart_points(client, char, start, stop)
        alarms = [a for a in read_alarms(client, char) if a.opened_at < stop and a.last_at >= start]
        out[char] = Observed(tuple(points), tuple(alarms))
    return out


def default_end(truth: GroundTruth, now: datetime | None = None) -> datetime:
    """1 s after the latest of ``now``, the nominal last part time and every fault time."""
    times = [now or datetime.now(UTC)]
    if truth.takt_s is not None:
        times.append(truth.started_at + timedelta(seconds=truth.parts_generated * truth.takt_s))
    times += [t for f in truth.faults for t in (f.started_at, f.ended_at) if t is not None]
    return max(times) + MARGIN


def _get(client: ReadClient, path: str, params: Mapping[str, str], char: str) -> Any:
    what = "chart" if path != ALARMS else "alarms"
    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise ServiceReadError(f"{what} of {char!r}: request failed: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise ServiceReadError(
            f"{what} of {char!r}: HTTP {response.status_code}: {_problem(response)}"
        )
    try:
        return response.json()
    except ValueError as exc:
        raise ServiceReadError(f"{what} of {char!r}: the answer is not JSON") from exc


def _problem(response: _Answer) -> str:
    """The problem+json ``detail`` (or title), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or "(empty body)"
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:1000]
    return str(body)[:300]


def _page_points(answer: Mapping[str, Any], page: int) -> list[ChartPoint]:
    """One answer's points; EWMA/CUSUM ``index`` counts within this answer."""
    raw = answer["points"]
    sources: list[set[str]] = [{v["chart"] for v in p["violations"]} for p in raw]
    for name in ("ewma", "cusum"):
        for s in (answer.get(name) or {}).get("points", []):
            if s["signal"]:
                sources[int(s["index"])].add(name)
    return [
        ChartPoint(_time(p["time"]), p["limit_version"], frozenset(found), page)
        for p, found in zip(raw, sources, strict=True)
    ]


def _alarm(a: Mapping[str, Any]) -> AlarmSeen:
    return AlarmSeen(
        int(a["id"]), str(a["rule"]), str(a["chart"]), _time(a["opened_at"]),
        _time(a["last_at"]), int(a["count"]), str(a["state"]),
    )  # fmt: skip


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``: no ``+`` for the query string to mangle."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone: pass an aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
