"""Drought analysis jobs end to end: forced tool use validated by pydantic, the summary streamed,
prompt caching counted in usage and cost, and the other drought job types."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from shared.jobtypes.drought import DroughtAnalysis
from tests.conftest import Stack
from tests.helpers import events, text_of

pytestmark = pytest.mark.integration

CANTERBURY = {"region": "Canterbury Plains", "audience": "farmer",
              "indicators": {"rainfall_mm_30d": 12.5, "rainfall_anomaly_pct": -68,
                             "soil_moisture_pct": 18, "spi_3m": -1.7, "ndvi": 0.31,
                             "reservoir_pct": 41, "temperature_anomaly_c": 1.9,
                             "forecast_rain_mm_14d": 6, "groundwater_m": -2.5}}


def analyse(stack: Stack, body: dict[str, Any], **options: Any) -> str:
    response = httpx.post(stack.url + "/api/jobs", json={
        "type": "drought_analysis", "input": body, "cache": False, **options})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_analysis_is_schema_valid_and_its_summary_streams(stack: Stack) -> None:
    stream = events(stack.url, analyse(stack, {**CANTERBURY, "question": uuid.uuid4().hex}))
    final = stream[-1].data
    assert final["status"] == "succeeded", final
    analysis = DroughtAnalysis.model_validate(final["result"]["analysis"])
    assert analysis.risk_level in ("none", "low", "moderate", "high", "severe", "extreme")
    assert 0 <= analysis.confidence <= 1 and analysis.key_factors and analysis.recommendations
    assert text_of(stream) == analysis.summary == final["result"]["text"]
    assert len([e for e in stream if e.event == "token"]) > 1  # it streamed, not one blob


def test_prompt_caching_is_counted_in_usage_and_cost(stack: Stack) -> None:
    first = events(stack.url, analyse(stack, {**CANTERBURY, "region": "Hawke's Bay"}))[-1].data
    second = events(stack.url, analyse(stack, {**CANTERBURY, "region": "Wairarapa"}))[-1].data
    assert second["usage"]["cache_read_input_tokens"] > 1000
    assert second["usage"]["input_tokens"] < first["usage"]["input_tokens"] + \
        first["usage"]["cache_creation_input_tokens"]
    assert first["usage"]["cache_creation_input_tokens"] > 0 or \
        first["usage"]["cache_read_input_tokens"] > 0
    # The cached prefix is billed at 0.1x, so the same-sized analysis costs less.
    assert second["cost_usd"] < first["cost_usd"] or first["usage"]["cache_read_input_tokens"]


def test_truncated_tool_input_is_retried_once_then_fails(stack: Stack) -> None:
    final = events(stack.url, analyse(stack, CANTERBURY, max_tokens=12))[-1].data
    assert final["status"] == "failed"
    assert final["error"]["type"] == "invalid_model_output"
    assert final["attempts"] == 2


@pytest.mark.parametrize(("indicators", "field"), [
    ({"soil_moisture_pct": 150}, "indicators.soil_moisture_pct"),
    ({"spi_3m": "dry"}, "indicators.spi_3m"),
    ({"ndvi": 3}, "indicators.ndvi"),
    ({"rainfall_mm_30d": -5}, "indicators.rainfall_mm_30d"),
    ({"groundwater_m": "low"}, "indicators"),
    ({}, "indicators"),
])
def test_nonsense_indicators_are_422(stack: Stack, indicators: dict[str, Any], field: str) -> None:
    response = httpx.post(stack.url + "/api/jobs", json={
        "type": "drought_analysis", "input": {"region": "X", "indicators": indicators}})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_missing_region_and_bad_audience(stack: Stack) -> None:
    for body, field in [({"indicators": {"spi_3m": -1}}, "region"),
                        ({"region": "X", "indicators": {"spi_3m": -1}, "audience": "king"},
                         "audience")]:
        response = httpx.post(stack.url + "/api/jobs",
                              json={"type": "drought_analysis", "input": body})
        assert response.status_code == 422 and response.json()["error"]["field"] == field


def test_assistant_and_forecast_job_types(stack: Stack) -> None:
    for body in [
        {"type": "drought_assistant", "input": {"message": "How do I budget feed?"}},
        {"type": "forecast_explanation",
         "input": {"forecast": {"rain_mm_14d": 8, "chance_of_rain_pct": 30, "max_temp_c": 31},
                   "region": "Marlborough"}},
    ]:
        response = httpx.post(stack.url + "/api/jobs", json={**body, "max_tokens": 40,
                                                             "cache": False})
        assert response.status_code == 202
        final = events(stack.url, response.json()["id"])[-1].data
        assert final["status"] == "succeeded" and final["result"]["text"]
