"""The dashboard's files as served (no browser: tests/api/ui drives one): /ui and /docs load
nothing from outside the server, every module a page imports is there, the pages carry their
security headers, and the package data ships every file."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from fastapi.testclient import TestClient

from api.ui import STATIC

ROOT = Path(__file__).resolve().parents[2]
_IMPORT = re.compile(r"""(?:import|export)\s[^'";]*?from\s*["']([^"']+)["']""")


def test_ui_redirects_to_its_page_with_security_headers(client: TestClient) -> None:
    redirect = client.get("/ui", follow_redirects=False)
    assert (redirect.status_code, redirect.headers["location"]) == (307, "/ui/")
    page = client.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="js/main.js">' in page.text
    script = client.get("/ui/js/main.js")
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))


def test_every_import_of_every_module_is_served(client: TestClient) -> None:
    # The ES modules: ours and the vendored Preact/htm (Swagger UI's bundle is a classic script).
    modules = sorted([*STATIC.glob("js/**/*.js"), *STATIC.glob("vendor/*.module.js")])
    assert len(modules) > 10
    for module in modules:
        for target in _IMPORT.findall(module.read_text()):
            assert target.startswith("."), f"{module}: bare import {target!r} needs an import map"
            path = (module.parent / target).resolve().relative_to(STATIC)
            assert client.get(f"/ui/{path}").status_code == 200, f"{module} imports {target}"


def test_unknown_files_are_404(client: TestClient) -> None:
    assert client.get("/ui/nothing-here.js").status_code == 404
    assert client.get("/ui/../pyproject.toml").status_code == 404


def test_docs_load_swagger_from_the_server(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/ui/vendor/swagger-ui-bundle.js" in docs.text
    assert "/ui/vendor/swagger-ui.css" in docs.text
    assert not re.search(r"""(src|href)=["']https?://""", docs.text)
    assert client.get("/ui/vendor/swagger-ui-bundle.js").status_code == 200
    assert client.get("/redoc").status_code == 404  # its page loads a CDN script: not served


def test_the_package_data_ships_every_dashboard_file() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = globs["package-data"]["api"]
    package = STATIC.parent.parent
    for path in STATIC.rglob("*"):
        if path.is_file():
            relative = path.relative_to(package).as_posix()
            assert any(_glob_matches(relative, p) for p in patterns), (
                f"{relative} is not in [tool.setuptools.package-data] api"
            )


def _glob_matches(path: str, pattern: str) -> bool:
    """Whether a setuptools package-data glob (no `**`) matches `path`, part by part."""
    parts, globs = path.split("/"), pattern.split("/")
    if len(parts) != len(globs):
        return False
    return all(fnmatch(part, glob) for part, glob in zip(parts, globs, strict=True))
