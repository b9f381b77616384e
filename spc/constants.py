"""Control-chart constants.

The walking skeleton needs the n = 2 constants of the moving-range chart only; the full
AIAG table (n = 2..25) arrives with the complete chart family.

Values are exact, not the rounded table entries: for n = 2 the range of two independent
N(0, 1) draws is |Z1 - Z2| with Z1 - Z2 ~ N(0, 2), so d2 = E[R] = 2/sqrt(pi) and
d3 = sd[R] = sqrt(2 - 4/pi). The AIAG SPC manual (2nd ed., appendix E) prints
d2 = 1.128, d3 = 0.853, D3 = 0 and D4 = 3.267 for n = 2; tests hold these to that table.
"""

from __future__ import annotations

import math

D2_N2 = 2.0 / math.sqrt(math.pi)
"""d2 for subgroups of 2 (moving range of two consecutive individuals)."""

D3_N2 = math.sqrt(2.0 - 4.0 / math.pi)
"""d3 for subgroups of 2: standard deviation of the relative range."""

D4_N2 = 1.0 + 3.0 * D3_N2 / D2_N2
"""D4 for subgroups of 2: UCL of the moving-range chart is D4 * MR-bar."""

D3_LOWER_N2 = 0.0
"""D3 for subgroups of 2: max(0, 1 - 3 d3/d2) is negative, so the MR chart has no LCL."""
