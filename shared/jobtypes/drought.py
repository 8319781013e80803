"""`drought_analysis`: how bad is the drought in a region, how sure is Claude, and what should
people do. The answer comes through a forced tool call validated by pydantic — never parsed from
prose — while the summary still streams to the client as it is written."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.jobtypes import prompts
from shared.jobtypes.base import InvalidModelOutput, JobType, Request
from shared.schemas import Strict

TOOL = "record_drought_analysis"
Audience = Literal["farmer", "council", "analyst"]


class Indicators(BaseModel):
    """Known indicators with their units and plausible ranges; others may be added as numbers."""

    model_config = ConfigDict(extra="allow", strict=True)

    rainfall_mm_30d: float | None = Field(None, ge=0, le=3000, description="mm over 30 days")
    rainfall_anomaly_pct: float | None = Field(None, ge=-100, le=1000, description="% of normal")
    soil_moisture_pct: float | None = Field(None, ge=0, le=100, description="% field capacity")
    spi_3m: float | None = Field(None, ge=-5, le=5, description="3-month SPI")
    ndvi: float | None = Field(None, ge=-1, le=1)
    reservoir_pct: float | None = Field(None, ge=0, le=150, description="% full")
    temperature_anomaly_c: float | None = Field(None, ge=-20, le=20, description="degrees C")
    forecast_rain_mm_14d: float | None = Field(None, ge=0, le=2000, description="mm, 14 days")

    @field_validator("*", mode="before")
    @classmethod
    def _ints_are_numbers(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _extra_are_numbers(self) -> Indicators:
        for name, value in (self.model_extra or {}).items():
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or not math.isfinite(float(value)):
                raise ValueError(f"indicator {name!r} must be a finite number")
        return self

    def given(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class DroughtInput(Strict):
    region: StrictStr = Field(min_length=1, max_length=200)
    indicators: Indicators
    question: StrictStr | None = Field(None, max_length=2000)
    audience: Audience = "farmer"

    @field_validator("indicators")
    @classmethod
    def _some_indicator(cls, value: Indicators) -> Indicators:
        if not value.given():
            raise ValueError("give at least one indicator")
        return value


class Recommendation(BaseModel):
    action: str = Field(min_length=1)
    audience: Audience
    urgency: Literal["immediate", "this_week", "this_month", "seasonal"]


class DroughtAnalysis(BaseModel):
    risk_level: Literal["none", "low", "moderate", "high", "severe", "extreme"]
    confidence: float = Field(ge=0, le=1)
    summary: str = Field(min_length=1)
    key_factors: list[str] = Field(min_length=1, max_length=10)
    recommendations: list[Recommendation] = Field(min_length=1, max_length=10)


def _tool() -> dict[str, Any]:
    return {"name": TOOL, "description": "Record the drought analysis of one region.",
            "input_schema": DroughtAnalysis.model_json_schema()}


def build_request(data: BaseModel) -> Request:
    assert isinstance(data, DroughtInput)
    lines = [f"Region: {data.region}", f"Audience: {data.audience}", "Indicators:"]
    lines += [f"- {name}: {value:g}" for name, value in data.indicators.given().items()]
    if data.question:
        lines.append(f"Question: {data.question}")
    return {
        "system": [{"type": "text", "text": prompts.DROUGHT_METHOD,
                    "cache_control": {"type": "ephemeral"}}],
        "tools": [_tool()],
        "tool_choice": {"type": "tool", "name": TOOL},
        "messages": [{"role": "user", "content": "\n".join(lines)}],
    }


def read_result(text: str, tool_inputs: dict[str, str]) -> dict[str, Any]:
    raw = tool_inputs.get(TOOL)
    if not raw:
        raise InvalidModelOutput(f"Claude did not call {TOOL}")
    try:
        analysis = DroughtAnalysis.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise InvalidModelOutput(f"{TOOL} input is invalid: {exc}") from None
    return {"analysis": analysis.model_dump(), "text": analysis.summary}


DROUGHT = JobType(name="drought_analysis", input_model=DroughtInput, build_request=build_request,
                  default_max_tokens=1500, read_result=read_result, streamed_field="summary")
