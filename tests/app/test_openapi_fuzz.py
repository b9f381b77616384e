"""The whole OpenAPI schema, fuzzed: every operation, generated inputs, the real app.

    .venv/bin/pytest tests/app/test_openapi_fuzz.py

For every operation in the app's own ``/openapi.json``, Schemathesis generates valid
(positive) and invalid (negative) requests and sends them in process (ASGI) to a real
service: SQLite store in a temporary directory, the demo plant with its limits frozen
and an alarm open, called as an administrator. Path and query parameters naming a
characteristic, line or process are half of the time real ids, so that the inputs get
past the 404 into the code that reads data. Every answer must not be a 5xx, must have a
documented status code, content type and headers, and a body matching its documented
schema.

Endless Server-Sent Events streams (``GET /api/v1/stream``) are read for
``STREAM_CUT_S`` and then cut; the events received by then are checked like any body.
Nothing is excluded.

Reproducible like the other Hypothesis tests (derandomized unless
``HYPOTHESIS_PROFILE=explore``). For a deeper search, raise the examples per operation
and mode: ``FUZZ_MAX_EXAMPLES=300 .venv/bin/pytest tests/app/test_openapi_fuzz.py``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from app import Settings, create_app
from tests.conftest import DEMO_CONFIG
from tests.support.api import key_headers

# Per operation and mode; 25 keeps the file well under 90 s on 2 cores.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}}}
)
STREAM_CUT_S = 0.3
# Ids that exist in the primed demo plant, used for half of the generated requests.
REAL_PATH = {"characteristic_id": "line1.turning.diameter", "line_id": "line1", "alarm_id": 1}
REAL_PATH |= {"process_id": "line1.turning", "level": "line", "entity_id": "line1"}
REAL_QUERY = {"characteristic": "line1.turning.diameter", "line": "line1", "process": "turning"}


# The document only (the app opens nothing until its lifespan starts): read once, since
# FastAPI takes ~0.5 s to build it; each test then runs its own app against it.
DOCUMENT = create_app(Settings(config=DEMO_CONFIG)).openapi()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
# Negative cases need something to make invalid: a parameter, a body or a key.
OPERATIONS = [
    pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path}-{mode}")
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE
    or any(operation.get(part) for part in ("parameters", "requestBody", "security"))
]
EVENT_STREAMS = {
    (method.upper(), path)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if any("text/event-stream" in r.get("content", {}) for r in operation["responses"].values())
}


@pytest.fixture
def fuzz_target(tmp_path: Path) -> tuple[FastAPI, dict[str, str]]:
    """A fresh app with history in its store, and an administrator's headers."""
    service_settings = Settings(config=DEMO_CONFIG, data_dir=tmp_path / "data")
    headers = key_headers(service_settings)
    app = create_app(service_settings)
    # The first call starts the app's lifespan; schemathesis ends it after the test.
    history: Any = {"measurements": _history()}
    push = SCHEMA["/api/v1/measurements"]["POST"].Case(body=history)
    assert push.call(app=app, headers=headers).status_code == 202
    return app, headers


def _history() -> list[dict[str, Any]]:
    """Enough in-control points to freeze every demo limit, then one far out (an alarm)."""
    rng = np.random.default_rng(7)
    start = datetime.now(UTC) - timedelta(hours=1)  # inside the default time windows
    centres = {
        "line1.turning.diameter": (25.0, 0.01),
        "line1.turning.length": (120.0, 0.05),
        "line1.grinding.roughness": (0.4, 0.05),
        "line2.vision.gap": (1.5, 0.02),
        "line2.vision.offset": (0.0, 0.05),
    }
    rows = []
    for char, (centre, sigma) in centres.items():
        values = list(rng.normal(centre, sigma, 150))
        if char == "line1.turning.diameter":
            values.append(centre + 10 * sigma)
        rows += [
            {"characteristic": char, "value": v, "time": (start + timedelta(seconds=i)).isoformat()}
            for i, v in enumerate(values)
        ]
    return rows


def _cases(
    operation: schemathesis.APIOperation[Any, Any, Any, Any], mode: GenerationMode
) -> st.SearchStrategy[schemathesis.Case[Any]]:
    """Generated requests; half with real ids where the operation takes them."""
    generated = operation.as_strategy(mode)
    path = {p.name: REAL_PATH[p.name] for p in operation.path_parameters if p.name in REAL_PATH}
    query = {p.name: REAL_QUERY[p.name] for p in operation.query if p.name in REAL_QUERY}
    if not (path or query):
        return generated
    real = operation.as_strategy(mode, path_parameters=path or None, query=query or None)
    return st.one_of(generated, real)


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_every_operation_answers_within_its_documented_schema(
    method: str,
    path: str,
    mode: GenerationMode,
    fuzz_target: tuple[FastAPI, dict[str, str]],
) -> None:
    app, headers = fuzz_target
    operation = SCHEMA[path][method]
    cut: dict[str, Any] = {"timeout": STREAM_CUT_S} if (method, path) in EVENT_STREAMS else {}

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(_cases(operation, mode))
    def answers_within_its_schema(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(app=app, headers=headers, **cut)

    answers_within_its_schema()
