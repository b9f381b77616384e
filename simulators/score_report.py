"""A detection score report as Markdown: per-kind summary, false alarms, each fault, notes."""

from __future__ import annotations

from collections.abc import Sequence

from simulators.scorer import ScoreReport, Stats


def render_markdown(report: ScoreReport) -> str:
    """The report as Markdown: per-kind summary, false alarms, each fault, then notes."""
    lines = [
        f"### Detection: scenario {report.scenario}, seed {report.seed} "
        f"(signals: {', '.join(report.sources)})",
        "",
        *_table(
            ["kind", "params", "faults", "detected", "missed", "unjudged",
             "delay pts median / mean / p90", "delay s median / mean / p90",
             "alarms detected", "alarm delay s median / mean / p90"],
            [[k.kind, k.params, k.faults, k.detected, k.missed, k.unjudged,
              _stats(k.delay_points), _stats(k.delay_s), k.alarm_detected,
              _stats(k.alarm_delay_s)] for k in report.kinds],
        ),
        "",
        *_table(
            ["characteristic", "in-control points", "false signal points", "per 1,000",
             "episodes", "in-control ARL", "false alarms", "alarms per 1,000"],
            [[name, f.in_control_points, f.signal_points, _num(f.per_1000), f.episodes,
              _num(f.arl), f.alarms, _num(f.alarms_per_1000)]
             for name, f in [*report.by_characteristic.items(), ("all", report.false_alarms)]],
        ),
        "",
        *_table(
            ["fault", "detection", "delay pts", "delay s", "by", "alarm", "alarm delay pts",
             "alarm delay s", "alarm by"],
            [[s.fault.id, s.chart.status, _num(s.chart.delay_points), _num(s.chart.delay_s),
              ", ".join(s.chart.by), s.alarm.status, _num(s.alarm.delay_points),
              _num(s.alarm.delay_s), ", ".join(s.alarm.by)] for s in report.faults],
        ),
    ]  # fmt: skip
    if report.notes:
        lines += ["", *(f"- {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    def row(cells: Sequence[object]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [row(header), row(["---"] * len(header)), *(row(r) for r in rows)]


def _stats(s: Stats) -> str:
    return "–" if s.n == 0 else f"{_num(s.median)} / {_num(s.mean)} / {_num(s.p90)}"


def _num(x: float | None) -> str:
    """Up to 4 significant digits; an en dash for None."""
    return "–" if x is None else f"{x:.4g}"
