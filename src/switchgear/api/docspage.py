"""The interactive API page at /api/docs, its Swagger UI assets served from the package."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

DOCS = "/api/docs"
ASSETS = f"{DOCS}/assets"


def assets_dir() -> Path:
    """The Swagger UI release the swagger-ui-bundle package ships (vendor/swagger-ui-X.Y.Z)."""
    vendor = Path(str(files("swagger_ui_bundle") / "vendor"))
    return max(vendor.glob("swagger-ui-*"))


def install(app: FastAPI, openapi_url: str) -> None:
    """Serve Swagger UI at /api/docs with no request leaving the server; /docs leads there."""

    @app.get(DOCS, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} — API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )

    @app.get("/docs", include_in_schema=False)
    async def docs_elsewhere() -> Response:
        return RedirectResponse(DOCS)

    app.mount(ASSETS, StaticFiles(directory=assets_dir()), name="swagger-ui")
