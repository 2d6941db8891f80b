"""Landed migrations never change: each file's SHA-256 is checked in
(`core/migrations/history.sha256`, `sha256sum` format), and a migration file that is not listed
fails too. A new migration is a new file plus one appended line:
`cd core/migrations/versions && sha256sum 0013_*.py >> ../history.sha256`."""

from __future__ import annotations

import hashlib
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parents[2] / "core" / "migrations"
VERSIONS = MIGRATIONS / "versions"


def _recorded() -> dict[str, str]:
    recorded: dict[str, str] = {}
    for line in (MIGRATIONS / "history.sha256").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name.lstrip("*")] = digest
    return recorded


def _migration_files() -> list[Path]:
    return sorted(path for path in VERSIONS.glob("*.py") if path.name != "__init__.py")


def test_no_landed_migration_has_changed() -> None:
    recorded = _recorded()
    changed = [
        path.name
        for path in _migration_files()
        if path.name in recorded
        and hashlib.sha256(path.read_bytes()).hexdigest() != recorded[path.name]
    ]
    assert changed == [], f"landed migrations were edited (write a new one instead): {changed}"


def test_every_migration_is_recorded_and_none_was_deleted() -> None:
    recorded = _recorded()
    present = {path.name for path in _migration_files()}
    assert sorted(present - set(recorded)) == [], "add the new migration's hash to history.sha256"
    assert sorted(set(recorded) - present) == [], "a landed migration was deleted or renamed"


def test_the_history_is_in_revision_order() -> None:
    names = list(_recorded())
    assert names == sorted(names)
