"""Prometheus metrics of a host's agentmill processes, in prometheus_client's multiprocess mode.

The API and every worker of a host write their metrics to files in one directory
(`PROMETHEUS_MULTIPROC_DIR`, set by `prepare_metrics_dir`), and whoever renders them (the API's
/metrics, a worker's metrics port) reads them all: one scrape sees the whole host, whichever
process answers it. prometheus_client chooses per process, when it is first imported, whether
values go to those files, so `prepare_metrics_dir` must run before anything imports it: the
`agentmill` command calls it first thing (cli/main.py), and this module imports prometheus_client
only inside its functions for that reason. A process that never calls it (tests, the inference
server) keeps its metrics in memory and renders its own.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import Settings

if TYPE_CHECKING:  # imported for real inside the functions: see the module text
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
"""The variable through which prometheus_client finds the shared directory."""


def metrics_dir(settings: Settings) -> Path:
    """Where this host's processes keep their metrics: `metrics_dir`, else `<home>/metrics`."""
    return settings.metrics_dir or settings.home / "metrics"


def prepare_metrics_dir(settings: Settings) -> Path:
    """Put this process (and the children it starts) in multiprocess mode: set
    PROMETHEUS_MULTIPROC_DIR to `metrics_dir(settings)` unless it is set already, and create
    the directory, without files a dead process of this pid left. Call before anything
    imports prometheus_client; the directory in effect."""
    current = os.environ.get(ENV_VAR)
    path = Path(current) if current else metrics_dir(settings)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV_VAR] = str(path)
    imported = "prometheus_client" in sys.modules
    if imported and multiprocess_mode():
        return path  # called again: this process's files are its own, live
    # Files named with this pid can only be a dead process's (a container restarted as pid 1
    # again): this process would carry on from their values, a gauge's too.
    for stale in path.glob(f"*_{os.getpid()}.db"):
        stale.unlink(missing_ok=True)
    if imported:
        log.warning(
            "prometheus_client was imported before %s was set: this process's metrics "
            "stay in memory",
            ENV_VAR,
        )
    return path


def leave_multiprocess_mode() -> None:
    """Keep this process's metrics in memory, whatever its environment says (the inference
    server: its metrics belong to one server instance and are served by it). Call before
    anything imports prometheus_client."""
    os.environ.pop(ENV_VAR, None)


def reset_metrics_dir(path: Path) -> None:
    """Empty `path` of the files of processes gone: a supervisor does this before it starts
    its children, so counters of a previous start do not linger."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


def mark_process_dead(pid: int) -> None:
    """Drop the live gauges of the ended process `pid` (its counters and histograms stay in
    the totals); nothing outside multiprocess mode."""
    if os.environ.get(ENV_VAR):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def multiprocess_mode() -> bool:
    """Whether this process writes its metrics to the shared directory (the variable was set
    when prometheus_client was first imported, and still is)."""
    from prometheus_client import values

    return bool(os.environ.get(ENV_VAR)) and getattr(values.ValueClass, "_multiprocess", False)


def metrics_registry() -> CollectorRegistry:
    """What to collect from: every process's files in multiprocess mode, else this process's
    default registry."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    if not multiprocess_mode():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def render_metrics() -> tuple[bytes, str]:
    """The exposition text of this host's metrics (or this process's), and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(metrics_registry()), CONTENT_TYPE_LATEST


def serve_worker_metrics(port: int, addr: str = "0.0.0.0") -> int:  # noqa: S104 (scraped)
    """Serve `render_metrics`' text at http://ADDR:PORT/metrics from a daemon thread; the port
    bound (`port` 0 picks a free one)."""
    from prometheus_client import start_http_server

    server, _ = start_http_server(port, addr=addr, registry=metrics_registry())
    bound: int = server.server_address[1]
    log.info("serving metrics on port %d", bound)
    return bound
