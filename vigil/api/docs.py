"""``/docs``: Swagger UI served from files that ship with Vigil, not from a CDN.

Operators run Vigil on management networks without internet access, where
FastAPI's default page (its scripts on jsDelivr) stays blank. The Swagger UI
distribution comes from the ``fastapi-swagger`` package, whose only job is
to carry a current build of it; Vigil mounts its files under
``/docs/assets`` and writes the page itself.
"""

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def install(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(packages=[("fastapi_swagger", "resources")]), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True, "filter": True},
        )
