"""SQL of the hourly capability sums, shared by the SQLite and PostgreSQL stores.

Saving adds to the stored row of the same (characteristic, hour, shift): the service
flushes increments, so concurrent flushes and restarts never lose or double a sum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, LiteralString

from spc.capability_sums import CapabilitySums

SQLITE_ADD: Final[LiteralString] = (
    "INSERT INTO capability_sums (characteristic, start_us, shift, n, sum_d, sum_d2, "
    "disp_sum, disp_n, out_of_spec) VALUES (?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (characteristic, start_us, shift) DO UPDATE SET "
    "n = capability_sums.n + excluded.n, sum_d = capability_sums.sum_d + excluded.sum_d, "
    "sum_d2 = capability_sums.sum_d2 + excluded.sum_d2, "
    "disp_sum = capability_sums.disp_sum + excluded.disp_sum, "
    "disp_n = capability_sums.disp_n + excluded.disp_n, "
    "out_of_spec = capability_sums.out_of_spec + excluded.out_of_spec"
)
SQLITE_TOTALS: Final[LiteralString] = (
    "SELECT characteristic, shift, sum(n), sum(sum_d), sum(sum_d2), sum(disp_sum), "
    "sum(disp_n), sum(out_of_spec) FROM capability_sums "
    "WHERE start_us >= ? AND start_us < ? GROUP BY characteristic, shift"
)
PG_ADD: Final[LiteralString] = (
    "INSERT INTO capability_sums (characteristic, start, shift, n, sum_d, sum_d2, "
    "disp_sum, disp_n, out_of_spec) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) "
    "ON CONFLICT (characteristic, start, shift) DO UPDATE SET "
    "n = capability_sums.n + excluded.n, sum_d = capability_sums.sum_d + excluded.sum_d, "
    "sum_d2 = capability_sums.sum_d2 + excluded.sum_d2, "
    "disp_sum = capability_sums.disp_sum + excluded.disp_sum, "
    "disp_n = capability_sums.disp_n + excluded.disp_n, "
    "out_of_spec = capability_sums.out_of_spec + excluded.out_of_spec"
)
PG_TOTALS: Final[LiteralString] = (
    "SELECT characteristic, shift, sum(n), sum(sum_d), sum(sum_d2), sum(disp_sum), "
    "sum(disp_n), sum(out_of_spec) FROM capability_sums "
    "WHERE start >= %s AND start < %s GROUP BY characteristic, shift"
)


def sums_row(sums: CapabilitySums) -> tuple[Any, ...]:
    """The shift and sum columns of one bucket, in the order of the INSERTs above."""
    return (
        sums.shift,
        sums.n,
        sums.sum_d,
        sums.sum_d2,
        sums.dispersion_sum,
        sums.dispersion_n,
        sums.out_of_spec,
    )


def totals_from_rows(rows: Iterable[Sequence[Any]]) -> dict[str, CapabilitySums]:
    """Rows of the TOTALS queries (one per characteristic and shift) added per characteristic."""
    totals: dict[str, CapabilitySums] = {}
    for r in rows:
        sums = CapabilitySums(
            int(r[2]), float(r[1]), float(r[3]), float(r[4]), float(r[5]), int(r[6]), int(r[7])
        )
        previous = totals.get(r[0])
        totals[r[0]] = sums if previous is None else previous + sums
    return totals
