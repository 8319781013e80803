"""Where a benchmark writes: progress lines to stderr, figures to `bench/results/<name>.json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "bench" / "results"


def log(message: str) -> None:
    """A progress line on stderr (stdout holds the report)."""
    sys.stderr.write(f"[bench] {message}\n")


def write_results(path: Path, results: dict[str, Any]) -> None:
    """The figures as indented JSON, creating the folder if need be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
