"""Detection scoring: what a scenario's ground truth says happened against what the service
signalled (pure: dicts and dataclasses in, dataclasses out; no I/O).

Definitions (times are the measurements' own, never part index x takt, so real-time and
faster-than-real-time runs are scored alike):

- A **faulty** point is one plotted at or after its fault's ``started_at`` and before its
  ``ended_at`` (when set). An X-bar point is plotted at its subgroup's last value, so a
  subgroup straddling the start counts as faulty.
- A **signal point** is a Phase II point (``limit_version`` not null; Phase I baseline points
  are never judged) with a signal from at least one chosen source: ``location`` (run-rule
  violations on the I / X-bar chart), ``dispersion`` (MR / R / S chart), ``ewma``,
  ``cusum``. All four by default; see :func:`detector`.
- **Detection delay** of a fault: the run length in chart points from the first faulty
  Phase II point to the first signal point at or after it, counted inclusively (a signal
  on the first faulty point is 1, the ARL convention); in seconds, the signal point's time
  minus the fault's ``started_at``. A fault starting during Phase I is scored in points
  from the first Phase II point (``started_in_phase_one``; its seconds still count from
  the fault start). **Missed**: no signal point from the fault's start until its end (or
  the end of the data). **Unjudged**: no Phase II point during the fault (not reached, over
  before the limits were frozen, or no data); counted apart from detected and missed.
- **In-control points**: the Phase II points of characteristics without a fault that
  started, and those before the first fault start on faulted ones (points after a fault
  ended are not counted: EWMA and CUSUM still remember it). **False alarms per 1,000
  in-control points** = signal points among them x 1000 / their count. A signal that
  persists (a CUSUM above its interval, the 10th, 11th... point of a run) marks several
  points in a row, so the **in-control ARL** is their count / the signal *episodes* (runs
  of consecutive signal points: one investigation each), None without any. This renewal
  estimate matches the textbook zero-state ARL only roughly, since the charts are not
  reset after a signal.
- **Alarms** (one row per characteristic, rule and chart until resolved): a fault is
  detected by the first alarm of a chosen source opened at or after its start (and before
  its end): delay in seconds from the start, and in points by locating ``opened_at`` among
  the chart's point times. An alarm opened in the in-control stretch (from its first to
  its last point) counts as a false alarm. Since a repeated signal only updates its open
  alarm, alarm figures undercount repeated signals, and an alarm opened before the fault
  and still open swallows the fault's signals of the same rule: if no new alarm opens
  while the fault lasts, it is **masked**, not missed.
- Aggregation per fault kind and params: counts, and the median (numpy: the mean of the
  middle two for an even count), mean and 90th percentile (numpy's linear interpolation)
  of the delays of the detected faults.

The chart API restarts run rules, EWMA and CUSUM at each answer page (5,000 points), so a
chart read in pages is not judged exactly as the live engine judged it: such charts, and
a fault undetected across a page boundary (``crosses_page``), are noted.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

FORMAT = "spcmon-ground-truth/1"
ALL_SOURCES: frozenset[str] = frozenset({"location", "dispersion", "ewma", "cusum"})
Status = Literal["detected", "missed", "masked", "unjudged"]


@dataclass(frozen=True)
class Fault:
    """One injected fault on one characteristic; ``ended_at`` None: until the end of the run."""

    id: str
    kind: str
    characteristic: str
    start_part: int
    end_part: int | None
    started_at: datetime | None  # None: the run ended before start_part
    ended_at: datetime | None
    params: Mapping[str, Any]
    description: str = ""

    @property
    def params_label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))


@dataclass(frozen=True)
class GroundTruth:
    """A parsed ``spcmon-ground-truth/1`` document (see :func:`parse_ground_truth`)."""

    scenario: str
    seed: int
    plant: str | None
    takt_s: float | None  # None: not recorded
    started_at: datetime  # time of part 0
    parts_generated: int
    characteristics: tuple[str, ...]
    faults: tuple[Fault, ...]


@dataclass(frozen=True)
class ChartPoint:
    """One chart point as the service answered it; ``sources`` that signalled on it, and
    ``page``, the answer page it came from (rules restart on each)."""

    time: datetime
    limit_version: int | None
    sources: frozenset[str] = frozenset()
    page: int = 0


@dataclass(frozen=True)
class AlarmSeen:
    """One alarm row: ``rule`` "1".."8", "ewma" or "cusum"; ``chart`` i, xbar, mr, r, s,
    ewma or cusum."""

    id: int
    rule: str
    chart: str
    opened_at: datetime
    last_at: datetime
    count: int
    state: str

    @property
    def source(self) -> str:
        if self.rule in ("ewma", "cusum"):
            return self.rule
        return "location" if self.chart in ("i", "xbar") else "dispersion"


@dataclass(frozen=True)
class Observed:
    """What the service showed of one characteristic: chart points in time order, alarms."""

    points: tuple[ChartPoint, ...]
    alarms: tuple[AlarmSeen, ...] = ()


@dataclass(frozen=True)
class Detection:
    """How (and whether) a fault was caught; delays are None unless ``detected``."""

    status: Status
    delay_points: int | None = None
    delay_s: float | None = None
    at: datetime | None = None
    by: tuple[str, ...] = ()  # sources (chart) or "rule@chart" (alarm)


@dataclass(frozen=True)
class FaultScore:
    fault: Fault
    chart: Detection
    alarm: Detection
    faulty_points: int  # Phase II points during the fault
    started_in_phase_one: bool
    crosses_page: bool  # rules restarted (page boundary) between fault start and detection


@dataclass(frozen=True)
class Stats:
    """Median, mean and 90th percentile of some delays; None without any."""

    n: int
    median: float | None
    mean: float | None
    p90: float | None


@dataclass(frozen=True)
class KindSummary:
    kind: str
    params: str
    faults: int
    detected: int
    missed: int
    unjudged: int
    delay_points: Stats
    delay_s: Stats
    alarm_detected: int
    alarm_delay_points: Stats
    alarm_delay_s: Stats


@dataclass(frozen=True)
class FalseAlarms:
    """In-control figures; an *episode* is a run of consecutive signal points."""

    in_control_points: int
    signal_points: int
    alarms: int
    episodes: int = 0

    @property
    def per_1000(self) -> float | None:
        return _rate(self.signal_points, self.in_control_points)

    @property
    def episodes_per_1000(self) -> float | None:
        return _rate(self.episodes, self.in_control_points)

    @property
    def alarms_per_1000(self) -> float | None:
        return _rate(self.alarms, self.in_control_points)

    @property
    def arl(self) -> float | None:
        """In-control ARL: in-control points per false signal episode (see the module doc)."""
        return self.in_control_points / self.episodes if self.episodes else None


@dataclass(frozen=True)
class ScoreReport:
    scenario: str
    seed: int
    sources: tuple[str, ...]
    faults: tuple[FaultScore, ...]
    kinds: tuple[KindSummary, ...]
    false_alarms: FalseAlarms
    by_characteristic: Mapping[str, FalseAlarms]
    notes: tuple[str, ...] = field(default=())


def detector(spec: Mapping[str, bool] | Iterable[str] | None = None) -> frozenset[str]:
    """The signal sources to count: None for all; names (``{"location", "ewma"}``; "rules"
    means both charts' rules); or switches over all (``{"rules": True, "cusum": False}``)."""
    if spec is None:
        return ALL_SOURCES
    if isinstance(spec, Mapping):
        on = {name for name, wanted in spec.items() if wanted}
        off = {name for name, wanted in spec.items() if not wanted}
        return ALL_SOURCES - _expand(off) | _expand(on)
    return _expand(set(spec))


def parse_ground_truth(doc: Mapping[str, Any]) -> GroundTruth:
    """Check and convert a ground-truth JSON document; ValueError names what is wrong."""
    if doc.get("format") != FORMAT:
        raise ValueError(f"ground truth: format must be {FORMAT!r}, got {doc.get('format')!r}")
    if doc.get("started_at") is None:
        raise ValueError("ground truth: started_at is null: the run produced no part to score")
    try:
        chars = tuple(doc["characteristics"])
        faults = tuple(_fault(f) for f in doc["faults"])
        plant, takt = doc.get("plant"), doc.get("takt_s")
        truth = GroundTruth(
            str(doc["scenario"]), int(doc["seed"]), None if plant is None else str(plant),
            None if takt is None else float(takt), _time(doc["started_at"]),
            int(doc["parts_generated"]), chars, faults,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"ground truth: missing or malformed field: {exc}") from exc
    unknown = sorted({f.characteristic for f in faults} - set(chars))
    if unknown:
        raise ValueError(f"ground truth: faults name characteristics not listed: {unknown}")
    return truth


def score(
    truth: GroundTruth,
    observed: Mapping[str, Observed],
    sources: Mapping[str, bool] | Iterable[str] | None = None,
) -> ScoreReport:
    """Score every fault and the in-control stretches (module doc for the definitions);
    ``sources`` as :func:`detector` takes them (default: all)."""
    chosen = detector(sources)
    empty = Observed(())
    faults = tuple(_score_fault(f, observed.get(f.characteristic, empty), chosen)
                   for f in truth.faults)  # fmt: skip
    by_char = {c: _false_alarms(c, truth, observed.get(c, empty), chosen)
               for c in truth.characteristics}  # fmt: skip
    total = FalseAlarms(
        sum(f.in_control_points for f in by_char.values()),
        sum(f.signal_points for f in by_char.values()),
        sum(f.alarms for f in by_char.values()),
        sum(f.episodes for f in by_char.values()),
    )
    return ScoreReport(
        truth.scenario, truth.seed, tuple(sorted(chosen)), faults, _summaries(faults),
        total, by_char, _notes(truth, observed, faults),
    )  # fmt: skip


def delay_stats(values: Sequence[float]) -> Stats:
    """Median, mean and 90th percentile (numpy conventions) of ``values``."""
    if not values:
        return Stats(0, None, None, None)
    a = np.asarray(values, dtype=np.float64)
    return Stats(a.size, float(np.median(a)), float(a.mean()), float(np.percentile(a, 90)))


def _expand(names: set[str]) -> frozenset[str]:
    out = (names - {"rules"}) | ({"location", "dispersion"} if "rules" in names else set())
    if unknown := sorted(out - ALL_SOURCES):
        raise ValueError(f"unknown signal sources {unknown}: use rules, {sorted(ALL_SOURCES)}")
    return frozenset(out)


def _time(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError(f"time {value!r} has no UTC offset")
    return moment


def _fault(f: Mapping[str, Any]) -> Fault:
    return Fault(
        str(f["id"]), str(f["kind"]), str(f["characteristic"]), int(f["start_part"]),
        None if f.get("end_part") is None else int(f["end_part"]),
        None if f.get("started_at") is None else _time(f["started_at"]),
        None if f.get("ended_at") is None else _time(f["ended_at"]),
        dict(f.get("params") or {}), str(f.get("description", "")),
    )  # fmt: skip


def _window(points: Sequence[ChartPoint], fault: Fault) -> range:
    """Indices of the points plotted during the fault (empty when it never started)."""
    if fault.started_at is None:
        return range(0)
    times = [p.time for p in points]
    lo = bisect.bisect_left(times, fault.started_at)
    hi = len(times) if fault.ended_at is None else bisect.bisect_left(times, fault.ended_at)
    return range(lo, hi)


def _score_fault(fault: Fault, seen: Observed, sources: frozenset[str]) -> FaultScore:
    points, window = seen.points, _window(seen.points, fault)
    judged = [i for i in window if points[i].limit_version is not None]
    if not judged or fault.started_at is None:
        return FaultScore(fault, Detection("unjudged"), Detection("unjudged"), 0, False, False)
    first, start = judged[0], fault.started_at
    hit = next((i for i in judged if points[i].sources & sources), None)
    chart = Detection("missed")
    if hit is not None:
        p = points[hit]
        chart = Detection("detected", hit - first + 1, _seconds(p.time, start), p.time,
                          tuple(sorted(p.sources & sources)))  # fmt: skip
    last = judged[-1] if hit is None else hit
    crosses = points[first].page != points[last].page
    alarm = _alarm_detection(fault, seen, first, sources)
    return FaultScore(fault, chart, alarm, len(judged), first > window.start, crosses)


def _alarm_detection(
    fault: Fault, seen: Observed, first: int, sources: frozenset[str]
) -> Detection:
    start = fault.started_at
    assert start is not None  # unjudged faults never get here
    end = fault.ended_at
    mine = sorted((a for a in seen.alarms if a.source in sources), key=lambda a: a.opened_at)
    opened = [a for a in mine if a.opened_at >= start and (end is None or a.opened_at < end)]
    if not opened:
        masked = any(a.opened_at < start <= a.last_at for a in mine)
        return Detection("masked" if masked else "missed")
    a = opened[0]
    at = bisect.bisect_left([p.time for p in seen.points], a.opened_at)
    # None when opened_at lies beyond the chart read (or, oddly, before the fault's points)
    points = at - first + 1 if first <= at < len(seen.points) else None
    return Detection("detected", points, _seconds(a.opened_at, start), a.opened_at,
                     (f"{a.rule}@{a.chart}",))  # fmt: skip


def _false_alarms(
    char: str, truth: GroundTruth, seen: Observed, sources: frozenset[str]
) -> FalseAlarms:
    starts = [f.started_at for f in truth.faults
              if f.characteristic == char and f.started_at is not None]  # fmt: skip
    until = min(starts, default=None)
    calm = [p for p in seen.points
            if p.limit_version is not None and (until is None or p.time < until)]  # fmt: skip
    flags = [bool(p.sources & sources) for p in calm]
    signals = sum(flags)
    episodes = sum(1 for i, flag in enumerate(flags) if flag and (i == 0 or not flags[i - 1]))
    if not calm:
        return FalseAlarms(0, signals, 0)
    lo, hi = calm[0].time, calm[-1].time
    alarms = sum(1 for a in seen.alarms if a.source in sources and lo <= a.opened_at <= hi)
    return FalseAlarms(len(calm), signals, alarms, episodes)


def _summaries(faults: Sequence[FaultScore]) -> tuple[KindSummary, ...]:
    groups: dict[tuple[str, str], list[FaultScore]] = {}
    for s in faults:
        groups.setdefault((s.fault.kind, s.fault.params_label), []).append(s)
    return tuple(_summary(kind, params, group) for (kind, params), group in sorted(groups.items()))


def _summary(kind: str, params: str, group: Sequence[FaultScore]) -> KindSummary:
    hits = [s.chart for s in group if s.chart.status == "detected"]
    alarms = [s.alarm for s in group if s.alarm.status == "detected"]
    return KindSummary(
        kind, params, len(group), len(hits),
        sum(1 for s in group if s.chart.status == "missed"),
        sum(1 for s in group if s.chart.status == "unjudged"),
        delay_stats([d.delay_points for d in hits if d.delay_points is not None]),
        delay_stats([d.delay_s for d in hits if d.delay_s is not None]),
        len(alarms),
        delay_stats([d.delay_points for d in alarms if d.delay_points is not None]),
        delay_stats([d.delay_s for d in alarms if d.delay_s is not None]),
    )  # fmt: skip


def _notes(
    truth: GroundTruth, observed: Mapping[str, Observed], faults: Sequence[FaultScore]
) -> tuple[str, ...]:
    notes = [f"{c}: no chart points read" for c in truth.characteristics
             if not observed.get(c, Observed(())).points]  # fmt: skip
    for c, seen in observed.items():
        if (pages := len({p.page for p in seen.points})) > 1:
            notes.append(f"{c}: chart read in {pages} pages; rules, EWMA and CUSUM restart "
                         "on each")  # fmt: skip
    for s in faults:
        if s.started_in_phase_one:
            notes.append(f"{s.fault.id}: started during Phase I; points counted from the "
                         "first Phase II point")  # fmt: skip
        if s.crosses_page:
            notes.append(f"{s.fault.id}: rules, EWMA and CUSUM restarted at a page boundary "
                         "between the fault start and its detection (or end)")  # fmt: skip
    return tuple(notes)


def _seconds(moment: datetime, start: datetime) -> float:
    return (moment - start).total_seconds()


def _rate(count: int, points: int) -> float | None:
    return count * 1000.0 / points if points else None
