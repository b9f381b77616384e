"""Value types of the incremental engine: configuration in, limits/capability/signals out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EwmaConfig:
    """EWMA chart parameters: weight ``lam`` (0 < lam <= 1) and limit width ``L`` in sigma.

    Default lam = 0.2, L = 3 (Montgomery, *Introduction to SQC*, sec. 9.2; Minitab's
    defaults). The statistic starts at the centre line when limits freeze.
    """

    lam: float = 0.2
    L: float = 3.0

    def __post_init__(self) -> None:
        if not 0.0 < self.lam <= 1.0:
            raise ValueError(f"EWMA lam must be in (0, 1], got {self.lam}")
        if not self.L > 0:
            raise ValueError(f"EWMA L must be positive, got {self.L}")


@dataclass(frozen=True)
class CusumConfig:
    """Tabular CUSUM parameters in sigma units: reference value ``k``, decision interval ``h``.

    Default k = 0.5, h = 4 (Montgomery sec. 9.1 recommends h = 4 or 5 with k = 0.5;
    Minitab uses h = 4). A signal is C+ or C- strictly above h sigma; no reset after it.
    """

    k: float = 0.5
    h: float = 4.0

    def __post_init__(self) -> None:
        if not self.k >= 0:
            raise ValueError(f"CUSUM k must be >= 0, got {self.k}")
        if not self.h > 0:
            raise ValueError(f"CUSUM h must be positive, got {self.h}")


@dataclass(frozen=True)
class LimitSet:
    """A frozen, versioned set of Phase II limits, in the data's unit.

    ``sigma`` is the sigma of the plotted statistic (of an individual value, or of a
    subgroup mean: sigma-hat / sqrt(n)); ``mr_center``/``mr_ucl``/``dispersion_lcl`` are
    the dispersion chart's (MR, R or S) centre and limits; ``baseline_n`` counts the
    points (subgroups) the limits were computed from.
    """

    version: int
    center: float
    ucl: float
    lcl: float
    sigma: float
    mr_center: float
    mr_ucl: float
    baseline_n: int
    dispersion_lcl: float = 0.0


@dataclass(frozen=True)
class RollingCapability:
    """Capability over the last ``n`` points (at most the engine's window).

    sigma_within = MR-bar / d2 over the window's consecutive pairs; sigma_overall is the
    sample standard deviation (n - 1); Cpk/Ppk use whichever limits are defined.
    """

    n: int
    mean: float
    sigma_within: float
    sigma_overall: float
    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None


@dataclass(frozen=True)
class RuleSignal:
    """A signal found by the engine on one point.

    ``position`` indexes the batch given to ``process``. ``rule`` is "1".."8" (run rules),
    "ewma" or "cusum". ``chart`` is "i" (individuals), "mr" (moving range), "ewma" or
    "cusum". ``side`` is "high"/"low" (above/below the centre), "up"/"down" for a trend,
    or "none" for patterns without a side (rules 4, 7, 8). ``value`` is the plotted
    statistic (the value, moving range, EWMA or CUSUM), ``limit`` the limit it crossed
    (None for pattern rules 2..8), ``limit_version`` the limit set it was judged against.
    """

    position: int
    characteristic: int
    rule: str
    chart: str
    side: str
    value: float
    limit: float | None
    limit_version: int
