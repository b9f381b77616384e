"""The live status of one characteristic, assembled from the engine, alarms and grades."""

from __future__ import annotations

from dataclasses import asdict

from app.api.schemas import (
    AlarmPublic,
    BaselinePublic,
    CapabilityPublic,
    CharacteristicPublic,
    GradeBriefPublic,
    LastValuePublic,
    LimitsPublic,
    StatusPublic,
)
from app.wiring import Service
from ingest import AlarmRecord, CharacteristicRecord
from spc.capability import cpk_interval, within_dof
from spc.engine_types import RollingCapability
from spc.grades import grade

SIGMA_METHOD = {"imr": "mr", "xbar_r": "rbar", "xbar_s": "sbar"}


def public_characteristic(record: CharacteristicRecord) -> CharacteristicPublic:
    """The API's view of a registered characteristic."""
    return CharacteristicPublic(**{**asdict(record), "rules": list(record.rules)})


def selected(record: CharacteristicRecord, line: str | None, process: str | None) -> bool:
    """Whether a characteristic is of ``line`` and ``process`` (None: any). ``process`` is
    ``line.process`` (as in /processes) or a bare process id."""
    return (line is None or record.line == line) and (
        process is None or process in (record.process, f"{record.line}.{record.process}")
    )


def status_answer(service: Service, record: CharacteristicRecord) -> tuple[bytes, str]:
    """The serialized status and its ETag, rebuilt only when something it shows changed."""
    latest = service.grades.latest
    key = (service.monitor.revision(record.id), latest.computed_at if latest else None)
    return service.status_answers.get(
        record.id,
        key,
        lambda: _build(service, record).model_dump_json().encode(),
    )


def _build(service: Service, record: CharacteristicRecord) -> StatusPublic:
    # records are frozen: an edited characteristic is a new record, equal to no old one
    public = service.status_answers.part(
        "characteristic", record.id, record, lambda: public_characteristic(record)
    )
    return build_status(service, record, public)


def build_status(
    service: Service, record: CharacteristicRecord, public: CharacteristicPublic
) -> StatusPublic:
    """Everything a dashboard tile shows, read from memory (no store round trip)."""
    monitor = service.monitor
    limits = monitor.limits(record.id)
    cap = monitor.capability(record.id)
    last = monitor.last.get(record.id)
    collected, needed = monitor.baseline_progress(record.id)
    alarms = service.alarms.open_alarms(record.id)
    return StatusPublic(
        characteristic=public,
        last=LastValuePublic(time=last.time, value=last.value) if last else None,
        baseline=BaselinePublic(collected=collected, needed=needed),
        limits=LimitsPublic(**vars(limits)) if limits else None,
        capability=_capability(cap, record, monitor.engine.window) if cap else None,
        open_alarms=[_alarm(a) for a in alarms],
        in_control=None if limits is None else not alarms,
        grade=_grade(service, record.id),
    )


def _alarm(a: AlarmRecord) -> AlarmPublic:
    assert a.id is not None  # listed alarms are stored ones
    return AlarmPublic(
        id=a.id, rule=a.rule, chart=a.chart, severity=a.severity,
        characteristics=list(a.characteristics), state=a.state, opened_at=a.opened_at,
        last_at=a.last_at, count=a.count, limit_version=a.limit_version,
        last_value=a.last_value, message=a.message,
    )  # fmt: skip


def _capability(
    cap: RollingCapability, record: CharacteristicRecord, window: int
) -> CapabilityPublic:
    interval = None
    size = record.subgroup_size
    subgroups = cap.n // size
    if cap.cpk is not None and subgroups >= 2:
        method = SIGMA_METHOD.get(record.chart, "mr")
        lower, upper = cpk_interval(cap.cpk, cap.n, within_dof(method, subgroups, size))
        interval = (lower, upper)
    return CapabilityPublic(**vars(cap), window=window, cpk_ci=interval)


def _grade(service: Service, characteristic: str) -> GradeBriefPublic | None:
    """The characteristic's grade brief, built once per grade computation."""
    latest = service.grades.latest
    return service.status_answers.part(
        "grade",
        characteristic,
        latest.computed_at if latest else None,
        lambda: _grade_brief(service, characteristic),
    )


def _grade_brief(service: Service, characteristic: str) -> GradeBriefPublic | None:
    latest = service.grades.latest
    graded = latest.get("characteristic", characteristic) if latest else None
    if latest is None or graded is None:
        return None
    level = graded.result.grade
    info = grade(level) if level is not None else None
    return GradeBriefPublic(
        grade=level,
        grade_en=info.en if info else None,
        grade_zh=info.zh if info else None,
        limiting_metric=graded.result.limiting.value if graded.result.limiting else None,
        computed_at=latest.computed_at,
    )
