"""The OpenAPI document's account of the session cookie: an apiKey-in-cookie scheme, named
as the app's settings name the cookie, which routes marked `NEEDS_LOGIN` require."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from .schemas import SESSION_SCHEME


def document_session_cookie(app: FastAPI, cookie_name: str) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {})["securitySchemes"] = {
                SESSION_SCHEME: {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": cookie_name,
                    "description": "The session ID that POST /login sets (HttpOnly).",
                }
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
