"""What the farming app's backend accepts and answers. Bounds are physical (rainfall is not
negative, soil moisture is a percentage, SPI lives in about ±5), so nonsense from a form or a
sensor is refused with a 422 before it costs a Claude call."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Audience = Literal["farmer", "community", "agronomist"]
FigureName = Annotated[str, Field(min_length=1, max_length=60)]
Figure = Annotated[float, Field(allow_inf_nan=False)]


class Request(BaseModel):
    """Unknown fields are refused: a misspelt `soil_moisture` should not vanish silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DroughtReading(Request):
    """One region's latest readings; every figure is optional, the more the better."""

    region: str = Field(min_length=1, max_length=100)
    rainfall_mm_30d: float | None = Field(None, ge=0, le=5000)
    rainfall_normal_mm_30d: float | None = Field(None, gt=0, le=5000)
    soil_moisture_pct: float | None = Field(None, ge=0, le=100)
    spi_3m: float | None = Field(None, ge=-5, le=5)
    max_temp_c: float | None = Field(None, ge=-40, le=60)
    ndvi: float | None = Field(None, ge=-1, le=1)
    land_use: str | None = Field(None, min_length=1, max_length=100)
    notes: str | None = Field(None, min_length=1, max_length=2000)


class Turn(Request):
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=8000)


class ChatRequest(Request):
    message: str = Field(min_length=1, max_length=8000)
    history: list[Turn] = Field(default_factory=list, max_length=40)


class ForecastRequest(Request):
    """A forecast as the app's weather service gives it: named figures, e.g.
    `{"rain_probability_pct": 30, "rain_mm_next_7d": 4, "max_temp_c": 31}`."""

    forecast: dict[FigureName, Figure] = Field(min_length=1, max_length=30)
    region: str | None = Field(None, min_length=1, max_length=100)
    audience: Audience = "farmer"


class AdvancedRequest(Request):
    regions: list[DroughtReading] = Field(min_length=1, max_length=10)


class Analysis(BaseModel):
    region: str
    analysis: str
    job_id: str
    cost_usd: float


class ChatReply(BaseModel):
    reply: str
    job_id: str


class Explanation(BaseModel):
    explanation: str
    audience: Audience
    job_id: str
    cost_usd: float
