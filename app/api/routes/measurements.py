"""The MES push."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Response, status

from app.api.deps import IngestDep, ServiceDep
from app.api.schemas import PushResult, RowRejectionPublic
from app.errors import problem
from ingest.mes import MesBatch, normalise

router = APIRouter(prefix="/api/v1/measurements", tags=["measurements"])


@router.post(
    "",
    response_model=PushResult,
    status_code=status.HTTP_202_ACCEPTED,
    responses={422: {"description": "malformed body, or every row rejected"}},
)
async def push_measurements(
    batch: MesBatch, service: ServiceDep, response: Response, caller: IngestDep
) -> object:
    """Push a batch of measurements, verdicts and cost events (answered once stored and charted).

    Good rows are accepted even when others are rejected; each rejected row is listed
    with its field and reason and kept as a dead letter. A batch with an
    ``idempotency_key`` can be resent safely: rows already stored are not stored again.
    """
    submission, rejected = normalise(batch, service.monitor, datetime.now(UTC))
    await service.pipeline.submit_and_wait(submission)
    result = PushResult(
        accepted=submission.size,
        rejected=[RowRejectionPublic(row=r.row, field=r.field, reason=r.reason) for r in rejected],
    )
    if rejected and submission.size == 0:
        detail = "; ".join(f"{r.row}.{r.field}: {r.reason}" for r in rejected[:5])
        return problem(
            422, "Every row was rejected", detail, errors=[r.model_dump() for r in result.rejected]
        )
    return result
