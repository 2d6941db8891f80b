"""The server's top-level packages are named alike everywhere that lists them: the wheel, the
Docker image, mypy, the import contracts and ruff's first-party list. A package added to the
tree but missing from one of them fails here, not in a user's image."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_SERVER = {"tests", "bench", "scripts", "sdk", "docs"}


def _packages() -> set[str]:
    return {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in NOT_SERVER
    }


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_is_in_the_wheel_mypy_the_contracts_and_ruff() -> None:
    packages = _packages()
    config = _pyproject()
    tool = config["tool"]
    assert isinstance(tool, dict)
    wheel = {name.rstrip("*") for name in tool["setuptools"]["packages"]["find"]["include"]}
    assert wheel == packages
    assert packages <= set(tool["mypy"]["files"])
    assert set(tool["importlinter"]["root_packages"]) == packages | {"agentmill"}
    assert set(tool["ruff"]["lint"]["isort"]["known-first-party"]) == packages


def test_the_image_copies_every_package() -> None:
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "Dockerfile").read_text(), re.M))
    assert _packages() | {"sdk"} <= copied
