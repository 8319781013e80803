"""The prompts the farming app sends through Sidecar. Readings are turned into labelled lines
and the SPI is classed here, in code, so every region is judged against the same thresholds
instead of whatever the model recalls of them."""

from __future__ import annotations

from examples.schemas import Audience, DroughtReading

DROUGHT_ANALYST = (
    "You are a drought analyst for the CKCIAS Community Resilience App, which supports farming "
    "communities through dry seasons. Judge drought risk from the readings given, say how sure "
    "you are and which readings drove the judgement, and give practical, low-cost actions a "
    "farmer can take this month. Be concise; never invent readings that were not given."
)
ASSISTANT = (
    "You are the CKCIAS Community Resilience App's assistant for farmers and rural communities "
    "facing drought. Answer plainly and practically (water, feed, stock, crops, money, "
    "wellbeing), point to local support services when they would help, and say so when a "
    "question needs an agronomist, a vet or an emergency service."
)
AUDIENCES: dict[Audience, str] = {
    "farmer": "a farmer deciding what to do on the farm this week",
    "community": "members of a rural community with no technical background",
    "agronomist": "an agronomist who wants the figures interpreted precisely",
}
# McKee et al. (1993) classes, driest first: (upper bound, label).
SPI_CLASSES = ((-2.0, "extremely dry"), (-1.5, "severely dry"), (-1.0, "moderately dry"),
               (1.0, "near normal"), (1.5, "moderately wet"), (2.0, "very wet"))


def spi_class(spi: float) -> str:
    """The standard SPI category of a value (≤ -2 extremely dry … ≥ 2 extremely wet)."""
    return next((label for bound, label in SPI_CLASSES if spi <= bound), "extremely wet")


def _rainfall(reading: DroughtReading) -> str | None:
    if reading.rainfall_mm_30d is None:
        return None
    line = f"Rainfall, last 30 days: {reading.rainfall_mm_30d:g} mm"
    if reading.rainfall_normal_mm_30d:
        share = 100 * reading.rainfall_mm_30d / reading.rainfall_normal_mm_30d
        line += f" ({share:.0f}% of the normal {reading.rainfall_normal_mm_30d:g} mm)"
    return line


def reading_lines(reading: DroughtReading) -> list[str]:
    """The readings that were given, one labelled line each."""
    spi = reading.spi_3m
    lines = [
        _rainfall(reading),
        None if reading.soil_moisture_pct is None
        else f"Soil moisture: {reading.soil_moisture_pct:g}%",
        None if spi is None else f"3-month SPI: {spi:g} ({spi_class(spi)})",
        None if reading.max_temp_c is None
        else f"Average daily maximum temperature: {reading.max_temp_c:g} °C",
        None if reading.ndvi is None else f"NDVI (vegetation greenness): {reading.ndvi:g}",
        None if reading.land_use is None else f"Main land use: {reading.land_use}",
        None if reading.notes is None else f"Notes from the community: {reading.notes}",
    ]
    return [line for line in lines if line is not None]


def analysis_prompt(reading: DroughtReading) -> str:
    lines = reading_lines(reading) or ["No readings yet: say what should be measured first."]
    return (
        f"Assess the drought situation in {reading.region} from these readings:\n"
        + "\n".join(f"- {line}" for line in lines)
        + "\n\nAnswer with: 1) the drought risk level (low, moderate, high or severe) and why; "
        "2) the likely effects on farms over the next month; 3) three practical actions."
    )


def forecast_prompt(forecast: dict[str, float], audience: Audience, region: str | None) -> str:
    figures = "\n".join(f"- {name.replace('_', ' ')}: {value:g}"
                        for name, value in forecast.items())
    place = f" for {region}" if region else ""
    return (
        f"Explain this forecast{place} in plain language for {AUDIENCES[audience]}. "
        "Say what it means for water, pasture and stock, and how certain it is.\n" + figures
    )


def forecast_system(audience: Audience) -> str:
    return (
        "You explain weather and drought forecasts for the CKCIAS Community Resilience App. "
        f"Your reader is {AUDIENCES[audience]}: use words they use, no unexplained jargon, "
        "and never overstate a forecast's certainty."
    )
