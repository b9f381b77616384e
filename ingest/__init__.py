"""ingest: the measurement model, configuration, collectors, pipeline and storage."""

from ingest.errors import ConfigError, IngestError, InvalidRecord, PayloadError, StoreError
from ingest.model import (
    CostCategory,
    CostEvent,
    DeadLetter,
    InspectionVerdict,
    Measurement,
    Quality,
)
from ingest.pipeline import Evaluator, FlushResult, Pipeline, PipelineObserver, Submission
from ingest.plant import PlantConfig, load_plant_config, parse_plant_config
from ingest.store import (
    Acknowledgement,
    AlarmRecord,
    CharacteristicRecord,
    Store,
    StoredLimits,
)

__all__ = [
    "Acknowledgement",
    "AlarmRecord",
    "CharacteristicRecord",
    "ConfigError",
    "CostCategory",
    "CostEvent",
    "DeadLetter",
    "Evaluator",
    "FlushResult",
    "IngestError",
    "InspectionVerdict",
    "InvalidRecord",
    "Measurement",
    "PayloadError",
    "Pipeline",
    "PipelineObserver",
    "PlantConfig",
    "Quality",
    "Store",
    "StoreError",
    "StoredLimits",
    "Submission",
    "load_plant_config",
    "parse_plant_config",
]
