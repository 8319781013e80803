"""Making text that came from users or models safe where reports put it: a CSV cell that a
spreadsheet opens (no formulas) and Markdown that a renderer turns into HTML (no markup, no
broken tables)."""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 control characters and DEL; tab and line breaks are handled on their own.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"\r\n?|\n|\t")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
# Characters a spreadsheet reads as the start of a formula (tab and CR start DDE payloads).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-!|~=])")
_ORDERED_LIST = re.compile(r"^(\d+)([.)])")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def csv_cell(value: Any) -> Any:
    """A value safe in a CSV cell: numbers as they are; text without control characters and,
    when a spreadsheet would read it as a formula, behind a leading `'`."""
    if value is None or isinstance(value, int | float):
        return "" if value is None else value
    text = str(value)
    if _NUMBER.fullmatch(text):
        return text  # '-1.7' is a number, not a formula
    dangerous = text[:1] in _FORMULA_START or bool(_CONTROL.match(text))
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    if dangerous or text[:1] in _FORMULA_START:
        return "'" + text
    return text


def markdown_text(value: Any) -> str:
    """Text rendered literally inside a Markdown line or table cell: on one line, with HTML
    characters as entities and Markdown's punctuation escaped."""
    text = _CONTROL.sub("", _LINE_BREAKS.sub(" ", str(value))).strip()
    text = "".join(_HTML.get(c, c) for c in text)
    text = _MARKDOWN.sub(r"\\\1", text)
    return _ORDERED_LIST.sub(r"\1\\\2", text)  # '1. x' would start a list
