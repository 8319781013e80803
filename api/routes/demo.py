"""`/demo`: the TypeScript client's demo page (a drought analysis form and a chat box, built
from clients/typescript/demo into clients/typescript/demo-dist, which is committed)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

DIST = Path(__file__).resolve().parents[2] / "clients" / "typescript" / "demo-dist"

router = APIRouter(tags=["demo"], include_in_schema=False)


def _file(relative: str) -> FileResponse:
    root = DIST.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        missing = "the demo is not built (npm run demo:build in clients/typescript)"
        raise HTTPException(404, missing if not root.is_dir() else f"no demo file {relative!r}")
    # Vite names assets by content hash, so they never change; the page itself may.
    immutable = target.parent.name == "assets"
    cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
    return FileResponse(target, headers={"Cache-Control": cache})


@router.api_route("/demo", methods=["GET", "HEAD"])
@router.api_route("/demo/", methods=["GET", "HEAD"])
async def demo_page() -> FileResponse:
    return _file("index.html")


@router.api_route("/demo/{path:path}", methods=["GET", "HEAD"])
async def demo_asset(path: str) -> FileResponse:
    return _file(path)
