"""Run the spc tests once more with numba's JIT off.

With ``NUMBA_DISABLE_JIT=1`` the kernels in ``spc._kernels`` run as plain Python, so the
interpreter checks what compiled code does not (e.g. out-of-bounds indexing) and coverage
tools see the kernel lines. The child run deselects this module (``-k "not nojit"``) and
this test skips itself when the JIT is already off, so it never recurses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SPC_TESTS = Path(__file__).resolve().parent


@pytest.mark.skipif(
    os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="already running with the JIT off"
)
def test_spc_suite_passes_with_numba_jit_disabled_nojit() -> None:
    command = [sys.executable, "-m", "pytest", str(SPC_TESTS), "-q", "-x"]
    command += ["-p", "no:cacheprovider", "-k", "not nojit"]
    completed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
