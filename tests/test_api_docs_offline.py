"""The API's documentation pages (/docs, /redoc) work on a server that reaches nothing outside:
their scripts and styles come from the service itself, not from a CDN. In a real browser whose
every request off the server is refused, Swagger UI lists the API's operations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from api_support import make_app, serving
from browser import chromium
from fastapi.testclient import TestClient


def asset_urls(html: str) -> list[str]:
    """Every script, style sheet and icon a page's HTML loads."""
    return re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]""", html) + re.findall(
        r"""(?:url|redoc_js_url)\s*:\s*['"]([^'"]+\.(?:js|css|png))['"]""", html
    )


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_documentation_pages_load_nothing_from_outside_the_server(tmp_path: Path, page: str):
    client = TestClient(make_app(tmp_path, images=1))
    response = client.get(page)
    assert response.status_code == 200
    assets = asset_urls(response.text)
    assert any(url.endswith(".js") for url in assets), assets
    for url in assets:
        assert url.startswith("/"), f"{page} loads {url} from outside the server"
        served = client.get(url)
        assert served.status_code == 200, url
        assert served.content, url


def test_swagger_ui_lists_the_operations_with_no_network(tmp_path: Path):
    app = make_app(tmp_path, images=1)
    with serving(app) as base, chromium() as browser:
        page = browser.new_page()
        refused: list[str] = []

        def only_the_server(route):
            if route.request.url.startswith(base):
                route.continue_()
            else:
                refused.append(route.request.url)
                route.abort()

        page.route("**/*", only_the_server)
        page.goto(f"{base}/docs")
        page.wait_for_selector(".opblock", timeout=15_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/api/review/next" in path for path in paths), paths
        assert not refused, refused
