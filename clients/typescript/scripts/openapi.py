"""Dump the API's OpenAPI schema to clients/typescript/openapi.json, or check that it is current.

    python3 clients/typescript/scripts/openapi.py          # write openapi.json
    python3 clients/typescript/scripts/openapi.py --check  # exit 1 if it differs from the app's

The TypeScript types in src/generated/api.ts are generated from that file (`npm run gen:types`),
and the hand-written types are checked against them at compile time (test/schema.test-d.ts), so
a change to a Python model shows up as a failing check here, then as a type error there.

The API declares a job's `input` and `result` as free-form objects (each job type validates its
own); so that their shapes are checked too, the job types' input models and the drought analysis
are added to `components.schemas`, and `x-job-types` maps each type to its input schema.

Request bodies embed pydantic's own `$defs` with refs to `#/components/schemas/<Name>`; the
schema is normalised by moving each such definition into `components.schemas` so every ref
resolves (openapi-typescript refuses dangling refs).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
TARGET = ROOT / "clients" / "typescript" / "openapi.json"


def _hoist(node: Any, schemas: dict[str, Any]) -> None:
    """Move every nested `$defs` entry into `schemas`, recursively."""
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            _hoist(definition, schemas)
            if name in schemas and schemas[name] != definition:
                raise ValueError(f"two different schemas are named {name!r}")
            schemas[name] = definition
        for value in node.values():
            _hoist(value, schemas)
    elif isinstance(node, list):
        for value in node:
            _hoist(value, schemas)


def normalise(schema: dict[str, Any]) -> dict[str, Any]:
    schema = json.loads(json.dumps(schema))
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    _hoist(schema["paths"], schemas)
    for name in list(schemas):
        _hoist(schemas[name], schemas)
    schema["components"]["schemas"] = dict(sorted(schemas.items()))
    return schema


def add_job_types(schema: dict[str, Any]) -> dict[str, Any]:
    from shared import jobtypes
    from shared.jobtypes.drought import DroughtAnalysis

    ref = "#/components/schemas/{model}"
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    job_types: dict[str, str] = {}
    for name in sorted(jobtypes.names()):
        job_type = jobtypes.get(name)
        assert job_type is not None
        model = job_type.input_model
        schemas[model.__name__] = model.model_json_schema(ref_template=ref)
        job_types[name] = ref.format(model=model.__name__)
    schemas["DroughtAnalysis"] = DroughtAnalysis.model_json_schema(ref_template=ref)
    schema["x-job-types"] = job_types
    return schema


def live_schema() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from api.main import create_app
    from shared.settings import load_settings

    # Auth off: no keys are needed to build the app, and the schema is the same.
    return normalise(add_job_types(create_app(load_settings(sidecar_auth="off")).openapi()))


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if openapi.json is stale")
    args = parser.parse_args(argv)
    fresh = render(live_schema())
    if not args.check:
        TARGET.write_text(fresh)
        print(f"wrote {TARGET.relative_to(ROOT)}")
        return 0
    current = TARGET.read_text() if TARGET.exists() else ""
    if current == fresh:
        print("openapi.json is current")
        return 0
    diff = difflib.unified_diff(current.splitlines(), fresh.splitlines(), "committed", "live",
                                lineterm="", n=2)
    print("\n".join(list(diff)[:80]))
    print("openapi.json differs from the API: run `npm run gen` in clients/typescript",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
