"""The nightly drought report: one batch per night over the configured regions. The batch id is
the night's date in the configured time zone, so a redelivered or doubled beat tick finds the
batch already there and creates nothing."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from shared import batches
from shared.batches import BatchRequest, BatchStore
from shared.settings import Settings


def night_of(settings: Settings, now: datetime | None = None) -> str:
    zone = ZoneInfo(settings.nightly_timezone)
    return (now or datetime.now(zone)).astimezone(zone).date().isoformat()


def load_regions(source: str) -> list[dict[str, Any]]:
    """Regions from a file or URL: a JSON list or JSON lines, each a drought-analysis input
    (`{"region", "indicators", ...}`) or a whole job body (with `type`)."""
    if source.startswith(("http://", "https://")):
        text = httpx.get(source, timeout=30).raise_for_status().text
    else:
        text = Path(source).read_text()
    text = text.strip()
    items = json.loads(text) if text.startswith("[") else [
        json.loads(line) for line in text.splitlines() if line.strip()]
    return [item if "type" in item else {"type": "drought_analysis", "input": item}
            for item in items]


async def run(store: BatchStore, settings: Settings, upstream_submit: Any,
              night: str | None = None) -> str | None:
    """Create tonight's batch; returns its id, or None when it already existed."""
    night = night or night_of(settings)
    if not settings.nightly_regions:
        raise ValueError("NIGHTLY_REGIONS is not set: no regions to report on")
    request = BatchRequest(name=f"Nightly drought report {night}",
                           jobs=load_regions(settings.nightly_regions),
                           mode=settings.nightly_mode)
    batch_id = f"nightly-{night}"
    created = await batches.start(store, settings, request, batch_id, upstream_submit,
                                  batches.Owner(settings.nightly_owner))
    return batch_id if created else None
