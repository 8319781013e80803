"""The drought report of a batch: regions ranked by risk then confidence, with key factors and
recommendations, and every failure listed with its reason — as JSON, Markdown or CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from shared.escaping import csv_cell, markdown_text
from shared.record import Record

RISK_ORDER = ("extreme", "severe", "high", "moderate", "low", "none")


def entry(record: Record) -> dict[str, Any]:
    """One report row from a job record: its analysis, or its error."""
    job_input = json.loads(record.get("input") or "{}")
    region = job_input.get("region") or job_input.get("message", "")[:60] or record["id"]
    result = json.loads(record["result"]) if record.get("result") else {}
    analysis = result.get("analysis")
    if record.get("status") == "succeeded" and analysis:
        return {"region": region, **{k: analysis[k] for k in (
            "risk_level", "confidence", "summary", "key_factors", "recommendations")}}
    if record.get("status") == "succeeded":
        return {"region": region, "risk_level": None, "confidence": None,
                "summary": result.get("text", ""), "key_factors": [], "recommendations": []}
    error = json.loads(record["error"]) if record.get("error") else None
    reason = error["message"] if error else f"job {record.get('status', 'unknown')}"
    return {"region": region, "error": reason, "status": record.get("status")}


def ranked(records: list[Record]) -> list[dict[str, Any]]:
    """Analyses by risk (worst first) then confidence; failures last."""
    rows = [entry(r) for r in records]

    def key(row: dict[str, Any]) -> tuple[int, float, str]:
        if "error" in row:
            return (len(RISK_ORDER) + 1, 0.0, row["region"])
        risk = row.get("risk_level")
        rank = RISK_ORDER.index(risk) if risk in RISK_ORDER else len(RISK_ORDER)
        return (rank, -(row.get("confidence") or 0.0), row["region"])

    return sorted(rows, key=key)


def markdown(name: str, rows: list[dict[str, Any]]) -> str:
    """The report as Markdown; every text that came from a user or a model is escaped (`md`),
    so a region named `<script>` or `| x |` shows as itself."""
    md = markdown_text
    analysed = [r for r in rows if "error" not in r]
    failed = [r for r in rows if "error" in r]
    lines = [f"# Drought report: {md(name)}", "",
             f"{len(analysed)} regions analysed, {len(failed)} failed.", "",
             "| Region | Risk | Confidence | Key factors |", "|---|---|---|---|"]
    for row in analysed:
        confidence = f"{row['confidence']:.2f}" if row.get("confidence") is not None else "-"
        factors = "; ".join(md(f) for f in row["key_factors"])
        lines.append(f"| {md(row['region'])} | {md(row['risk_level'] or '-')} | {confidence} | "
                     f"{factors} |")
    for row in analysed:
        lines += ["", f"## {md(row['region'])}", "", md(row["summary"]), ""]
        lines += [f"- **{md(r['urgency'])}** ({md(r['audience'])}): {md(r['action'])}"
                  for r in row["recommendations"]]
    if failed:
        lines += ["", "## Failures", ""]
        lines += [f"- {md(row['region'])}: {md(row['error'])}" for row in failed]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The report as CSV; no cell can run as a spreadsheet formula (see `csv_cell`)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["region", "risk_level", "confidence", "summary", "key_factors",
                     "recommendations", "error"])
    for row in rows:
        recs = "; ".join(f"[{r['urgency']}] {r['action']}" for r in row.get("recommendations", []))
        cells = [row["region"], row.get("risk_level"), row.get("confidence"),
                 row.get("summary", ""), "; ".join(row.get("key_factors", [])), recs,
                 row.get("error", "")]
        writer.writerow([csv_cell(cell) for cell in cells])
    return out.getvalue()
