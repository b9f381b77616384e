"""The stateful evaluator the service calls: batches in, raised and cleared warnings out.

Per characteristic it keeps the last ``buffer_size`` points in numpy ring buffers and,
after each batch, judges data health (quiet source cleared, bad quality, frozen sensor),
then the drift forecast, the rolling Cpk and the lag-1 autocorrelation over that window.
Each condition is raised once; it is re-emitted only when its severity rises (or a drift
turns to another limit), and emitted with ``cleared=True`` once its clearing condition
has held for ``clear_after`` evaluations in a row (a drift: for a whole drift window of
points). Clearing thresholds sit apart from raising ones (the hysteresis band), so a
condition near its threshold does not flap.

Not thread-safe: call it from one thread or task (the service's SPC worker).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from alerts.early_warnings import autocorrelation as ac
from alerts.early_warnings import capability as cap
from alerts.early_warnings import data_health as dh
from alerts.early_warnings.drift import DRIFT_CONFIDENCE, DRIFT_WINDOW, forecast_drift, judge_drift
from alerts.early_warnings.model import SEVERITY_RANK, EarlyWarning, JsonValue

FloatArray = npt.NDArray[np.float64]

CLEARED_TEXT: dict[str, str] = {
    "capability": "Rolling Cpk is back at or above its target",
    "drift": "No significant drift reaches a limit within the horizon any more",
    "quiet_source": "Data arrive again",
    "frozen_sensor": "Values move again",
    "bad_quality": "Values arrive with good quality again",
    "autocorrelation": "The lag-1 autocorrelation is negligible again",
}


@dataclass(frozen=True)
class EarlyWarningConfig:
    """Thresholds of every early warning (units in each field's comment)."""

    buffer_size: int = 200  # points kept per characteristic
    drift_window: int = DRIFT_WINDOW  # points in the Theil–Sen fit
    drift_confidence: float = DRIFT_CONFIDENCE  # two-sided level of the slope interval
    drift_min_shift_sigma: float = 0.75  # window level off the centre line, in sigma
    horizon_points: float | None = 100.0  # raise when a limit is this many points away
    horizon_seconds: float | None = 1800.0  # ... or this many seconds (None: not used)
    cpk_min_points: int = cap.CAPABILITY_MIN_POINTS
    quiet_factor: float = dh.QUIET_FACTOR  # × the median interval
    quiet_min_seconds: float = dh.QUIET_MIN_SECONDS
    frozen_repeats: int = dh.FROZEN_REPEATS
    autocorrelation_threshold: float = ac.AUTOCORRELATION_THRESHOLD
    autocorrelation_clear: float = ac.AUTOCORRELATION_CLEAR
    autocorrelation_min_points: int = ac.AUTOCORRELATION_MIN_POINTS
    clear_after: int = 3  # evaluations (frozen: changing points) in a row before clearing
    bad_quality_clear_points: int = 10  # good points after the last bad one

    def __post_init__(self) -> None:
        if self.buffer_size < max(self.drift_window, self.autocorrelation_min_points):
            raise ValueError("buffer_size must hold the drift and autocorrelation windows")
        if self.horizon_points is None and self.horizon_seconds is None:
            raise ValueError("set horizon_points, horizon_seconds or both")
        if min(self.clear_after, self.frozen_repeats, self.bad_quality_clear_points) < 1:
            raise ValueError(
                "clear_after, frozen_repeats and bad_quality_clear_points must be >= 1"
            )


@dataclass(frozen=True)
class CharacteristicContext:
    """Phase II context of one characteristic, in its unit (None: not set)."""

    center: float | None = None
    sigma: float | None = None
    ucl: float | None = None
    lcl: float | None = None
    lsl: float | None = None
    usl: float | None = None
    cpk_target: float = cap.CPK_TARGET
    unit: str | None = None


class _Ring:
    """The last ``size`` (time in POSIX seconds, value) pairs, oldest first on read."""

    def __init__(self, size: int) -> None:
        self._t = np.empty(size, dtype=np.float64)
        self._v = np.empty(size, dtype=np.float64)
        self._size, self._head, self._count = size, 0, 0

    def extend(self, t: FloatArray, v: FloatArray) -> None:
        t, v = t[-self._size :], v[-self._size :]
        where = (self._head + np.arange(t.size)) % self._size
        self._t[where], self._v[where] = t, v
        self._head = (self._head + t.size) % self._size
        self._count = min(self._count + t.size, self._size)

    def arrays(self) -> tuple[FloatArray, FloatArray]:
        if self._count < self._size:
            return self._t[: self._count].copy(), self._v[: self._count].copy()
        order = np.r_[self._head : self._size, 0 : self._head]
        return self._t[order], self._v[order]


@dataclass
class _Condition:
    """One condition's hysteresis: the active warning and the evaluations it has been gone."""

    active: EarlyWarning | None = None  # the latest raising, for its latest details
    emitted: EarlyWarning | None = None  # the latest one emitted
    since: datetime | None = None  # when it was first raised
    gone_for: int = 0

    def update(
        self,
        raised: EarlyWarning | None,
        gone: bool,
        at: datetime,
        clear_after: int,
        weight: int = 1,
    ) -> EarlyWarning | None:
        """The warning to emit, if any: `raised` when the raising condition holds now,
        `gone` when the clearing one does; `weight` is what this evaluation adds to the
        count towards `clear_after` (1 per evaluation, or the batch's points)."""
        current, emitted = self.active, self.emitted
        if raised is not None:
            self.active, self.gone_for = raised, 0
            self.since = self.since or raised.at
            if emitted is None or _escalates(emitted, raised):
                self.emitted = raised
                return raised
            return None
        if current is None:
            return None
        self.gone_for = self.gone_for + weight if gone else 0
        if self.gone_for < clear_after:
            return None
        since = self.since or current.at
        self.active, self.emitted, self.since, self.gone_for = None, None, None, 0
        return replace(
            current,
            severity="info",
            at=at,
            message=CLEARED_TEXT[current.kind],
            details={**current.details, "raised_at": since.isoformat()},
            cleared=True,
        )


def _escalates(old: EarlyWarning, new: EarlyWarning) -> bool:
    worse = SEVERITY_RANK[new.severity] > SEVERITY_RANK[old.severity]
    return worse or old.details.get("limit") != new.details.get("limit")


@dataclass
class _State:
    ring: _Ring
    context: CharacteristicContext = field(default_factory=CharacteristicContext)
    conditions: dict[str, _Condition] = field(default_factory=dict)
    runs: dh.RunState = field(default_factory=dh.RunState)
    good_since_bad: int = 0
    last_seen: float | None = None
    usual_interval: float | None = None  # of the ring's times; None: to compute again

    def condition(self, kind: str) -> _Condition:
        return self.conditions.setdefault(kind, _Condition())


class EarlyWarningEvaluator:
    """Per-characteristic early warnings over a bounded window (module docstring)."""

    def __init__(self, config: EarlyWarningConfig | None = None) -> None:
        self.config = config or EarlyWarningConfig()
        self._states: dict[str, _State] = {}

    def set_context(
        self,
        characteristic: str,
        *,
        center: float | None = None,
        sigma: float | None = None,
        ucl: float | None = None,
        lcl: float | None = None,
        lsl: float | None = None,
        usl: float | None = None,
        cpk_target: float = cap.CPK_TARGET,
        unit: str | None = None,
    ) -> None:
        """Set the Phase II limits and the specification (call again when they change)."""
        if sigma is not None and not sigma > 0.0:
            raise ValueError(f"sigma must be > 0 or None, not {sigma}")
        if lsl is not None and usl is not None and not lsl < usl:
            raise ValueError(f"lsl ({lsl}) must be below usl ({usl})")
        context = CharacteristicContext(center, sigma, ucl, lcl, lsl, usl, cpk_target, unit)
        self._state(characteristic).context = context

    def remove(self, characteristic: str) -> None:
        """Forget a characteristic (deleted or no longer monitored)."""
        self._states.pop(characteristic, None)

    def active(self, characteristic: str | None = None) -> list[EarlyWarning]:
        """The warnings currently raised (of one characteristic, or all), latest details."""
        names = [characteristic] if characteristic is not None else list(self._states)
        return [
            c.active
            for name in names
            if (state := self._states.get(name)) is not None
            for c in state.conditions.values()
            if c.active is not None
        ]

    def observe(
        self,
        characteristic: str,
        times: Sequence[datetime],
        values: Sequence[float] | FloatArray,
        quality_bad: int = 0,
    ) -> list[EarlyWarning]:
        """Take one batch of good values (aware times) and `quality_bad`, the count of
        values of the same batch left out for bad quality; return warnings raised,
        escalated or cleared by it."""
        t, v = _as_arrays(times, values)
        if quality_bad < 0:
            raise ValueError(f"quality_bad must be >= 0, not {quality_bad}")
        st = self._state(characteristic)
        at = max(times).astimezone(UTC) if t.size else datetime.now(UTC)
        changes: list[EarlyWarning | None] = []
        if t.size:
            changes.append(st.condition("quiet_source").update(None, True, at, 1))
            st.ring.extend(t, v)
            st.usual_interval = None  # new times: the median gap is computed again when asked
            newest = float(t[-1])
            st.last_seen = newest if st.last_seen is None else max(st.last_seen, newest)
        changes.append(self._bad_quality(characteristic, st, quality_bad, v.size, at))
        if t.size:
            changes.append(self._frozen(characteristic, st, v, at))
            wt, wv = st.ring.arrays()
            changes.append(self._drift(characteristic, st, wt, wv, at, int(t.size)))
            changes.append(self._capability(characteristic, st, wv, at))
            changes.append(self._autocorrelation(characteristic, st, wv, at))
        return [w for w in changes if w is not None]

    def check_quiet(self, now: datetime) -> list[EarlyWarning]:
        """Raise quiet-source warnings for characteristics silent too long at `now`."""
        now_s = _aware(now).timestamp()
        out: list[EarlyWarning] = []
        cfg = self.config
        for name, st in self._states.items():
            if st.last_seen is None:
                continue
            if st.usual_interval is None:  # once per new data, not at every check
                st.usual_interval = dh.usual_interval(st.ring.arrays()[0])
            interval = st.usual_interval
            if interval is None:
                continue
            if now_s - st.last_seen <= max(cfg.quiet_factor * interval, cfg.quiet_min_seconds):
                continue  # the common case, without building anything
            check = dh.check_quiet(
                st.last_seen, now_s, interval, cfg.quiet_factor, cfg.quiet_min_seconds
            )
            if check.quiet:
                at = datetime.fromtimestamp(now_s, UTC)
                w = EarlyWarning(
                    "quiet_source", name, "warning", at, check.message(), check.details()
                )
                out.extend(_some(st.condition("quiet_source").update(w, False, at, 1)))
        return out

    def source_offline(self, characteristic: str, at: datetime, reason: str) -> list[EarlyWarning]:
        """Raise a quiet-source warning at once for a known outage (Sparkplug NDEATH/DDEATH,
        OPC UA session lost); it clears when data arrive again."""
        at = _aware(at)
        message = f"Source offline: {reason}"
        w = EarlyWarning("quiet_source", characteristic, "warning", at, message, {"reason": reason})
        return _some(self._state(characteristic).condition("quiet_source").update(w, False, at, 1))

    # ------------------------------------------------------------------ the checks

    def _state(self, characteristic: str) -> _State:
        if characteristic not in self._states:
            self._states[characteristic] = _State(_Ring(self.config.buffer_size))
        return self._states[characteristic]

    def _bad_quality(
        self, name: str, st: _State, bad: int, good: int, at: datetime
    ) -> EarlyWarning | None:
        # bad values are taken as the batch's last: the good ones count from the next batch
        st.good_since_bad = 0 if bad else st.good_since_bad + good
        raised = None
        if bad:
            details: dict[str, JsonValue] = {"bad": bad, "good": good}
            message = dh.bad_quality_message(bad, good)
            raised = EarlyWarning("bad_quality", name, "warning", at, message, details)
        gone = st.good_since_bad >= self.config.bad_quality_clear_points
        return st.condition("bad_quality").update(raised, gone, at, 1)

    def _frozen(self, name: str, st: _State, v: FloatArray, at: datetime) -> EarlyWarning | None:
        st.runs = st.runs.extend(v)
        raised = None
        if st.runs.frozen(self.config.frozen_repeats):
            details: dict[str, JsonValue] = {
                "value": st.runs.last,
                "repeats": st.runs.run,
                "threshold": self.config.frozen_repeats,
            }
            message = st.runs.message(st.context.unit)
            raised = EarlyWarning("frozen_sensor", name, "warning", at, message, details)
        gone = st.runs.moving >= self.config.clear_after  # counted in points already
        return st.condition("frozen_sensor").update(raised, gone, at, 1)

    def _drift(
        self, name: str, st: _State, t: FloatArray, v: FloatArray, at: datetime, points: int
    ) -> EarlyWarning | None:
        cfg, ctx = self.config, st.context
        limits = {"usl": ctx.usl, "lsl": ctx.lsl, "ucl": ctx.ucl, "lcl": ctx.lcl}
        forecast = forecast_drift(t, v, limits, cfg.drift_window, cfg.drift_confidence)
        if forecast is None:
            return None
        j = judge_drift(
            forecast, cfg.horizon_points, cfg.horizon_seconds,
            ctx.center, ctx.sigma, cfg.drift_min_shift_sigma, ctx.unit,
        )  # fmt: skip
        raised = EarlyWarning("drift", name, j.severity, at, j.message, j.details)
        # cleared once gone for a whole window of points, as the estimate of a slow
        # drift swings from one window to the next
        return st.condition("drift").update(
            raised if j.raise_now else None, j.gone, at, cfg.drift_window, points
        )

    def _capability(
        self, name: str, st: _State, v: FloatArray, at: datetime
    ) -> EarlyWarning | None:
        ctx = st.context
        check = cap.rolling_cpk(v, ctx.lsl, ctx.usl, ctx.cpk_target, self.config.cpk_min_points)
        if check is None:
            return None
        raised = None
        if check.below_target:
            message, details = check.message(), check.details()
            raised = EarlyWarning("capability", name, check.severity, at, message, details)
        gone = check.cpk >= check.target
        return st.condition("capability").update(raised, gone, at, self.config.clear_after)

    def _autocorrelation(
        self, name: str, st: _State, v: FloatArray, at: datetime
    ) -> EarlyWarning | None:
        cfg = self.config
        check = ac.check_autocorrelation(
            v, cfg.autocorrelation_threshold, cfg.autocorrelation_clear,
            cfg.autocorrelation_min_points,
        )  # fmt: skip
        if check is None:
            return None
        raised = None
        if check.autocorrelated:
            message, details = check.message(), check.details()
            raised = EarlyWarning("autocorrelation", name, "info", at, message, details)
        return st.condition("autocorrelation").update(
            raised, check.independent, at, cfg.clear_after
        )


def _as_arrays(
    times: Sequence[datetime], values: Sequence[float] | FloatArray
) -> tuple[FloatArray, FloatArray]:
    if len(times) != len(values):
        raise ValueError(f"{len(times)} times but {len(values)} values: pass one time per value")
    t = np.array([_aware(x).timestamp() for x in times], dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite; count unusable values in quality_bad instead")
    order = np.argsort(t, kind="stable")
    return t[order], v[order]


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times must be aware datetimes (UTC), e.g. datetime.now(UTC)")
    return moment.astimezone(UTC)


def _some(w: EarlyWarning | None) -> list[EarlyWarning]:
    return [] if w is None else [w]
