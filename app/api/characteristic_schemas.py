"""Request models for creating and editing characteristics through the API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ingest.plant import ID_PATTERN, CharacteristicConfig, CusumSettings, EwmaSettings

SOURCE_HINT = (
    "characteristics created through the API receive data by POST /api/v1/measurements; "
    "OPC UA and MQTT sources are configured in the plant file"
)


class CharacteristicCreate(CharacteristicConfig):
    """A new characteristic; validated exactly as a plant-file entry is."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "line1.press.force",
                    "name": "Press-fit force",
                    "unit": "kN",
                    "line": "line1",
                    "process": "press",
                    "lsl": 11.0,
                    "usl": 13.0,
                    "target": 12.0,
                    "chart": "imr",
                    "subgroup_size": 1,
                    "rules": "nelson",
                }
            ]
        },
    )

    line: str = Field(pattern=ID_PATTERN)
    process: str = Field(pattern=ID_PATTERN)
    source: None = Field(default=None, description=SOURCE_HINT)

    @field_validator("source", mode="before")
    @classmethod
    def _no_source(cls, value: Any) -> None:
        if value is not None:
            raise ValueError(SOURCE_HINT)
        return None


class CharacteristicUpdate(BaseModel):
    """Fields to change; those left out keep their value, ``null`` clears a limit.

    The chart and subgroup size cannot change: the frozen limits belong to them.
    """

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"usl": 13.2, "rules": "western_electric"}]}
    )

    name: str | None = None
    unit: str | None = None
    lsl: float | None = None
    usl: float | None = None
    target: float | None = None
    chart: Literal["imr", "xbar_r", "xbar_s"] | None = None
    subgroup_size: int | None = Field(default=None, ge=1, le=25)
    rules: str | tuple[str, ...] | None = None
    ewma: EwmaSettings | None = None
    cusum: CusumSettings | None = None
