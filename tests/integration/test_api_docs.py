"""/docs and /redoc: off by default; when on, nothing is loaded from another origin."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

# Any URL with a scheme or a scheme-relative one: what would reach past this origin.
EXTERNAL = re.compile(r"""(?:src|href|url)\s*[=(]\s*["']?(?:[a-z]+:)?//""", re.IGNORECASE)


async def test_docs_pages_are_off_by_default(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc"):
        assert (await client.get(path)).status_code == 404
    assert (await client.get("/openapi.json")).status_code == 200


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_only_from_this_origin(
    page: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    client = await client_for(settings_for("memory", api_docs=True))
    response = await client.get(page)
    assert response.status_code == 200
    html = response.text
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "http" not in csp
    assets = re.findall(r"""(?:src|href)=["']?(/[^"' >]+)""", html)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        fetched = await client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 1000, asset
