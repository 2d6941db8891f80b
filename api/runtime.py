"""`agentmill up`: own the data directory, start the database, migrate, run the children."""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from types import FrameType

from api.bootstrap import bootstrap
from api.supervisor import Child, spawn, stop_all
from core import migrate
from core.config import Settings
from core.db import create_db_engine
from core.embedded_pg import EmbeddedPostgres, HomeLock
from core.errors import AgentmillError

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0


class StartupFailed(AgentmillError):
    """A child of `up` did not become ready."""


def check_port_free(host: str, port: int) -> None:
    """Fail early, with a clear message, when the API port is taken."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise AgentmillError(
                    f"port {port} on {host} is already in use; pick another with --port"
                ) from None
            raise AgentmillError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _local_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    return f"http://{shown}:{port}"


def _wait_ready(child: Child, url: str, stopping: threading.Event) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not stopping.is_set():
        if child.exit_code is not None:
            raise StartupFailed(f"{child.name} exited with status {child.exit_code} at start-up")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own URL)
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise StartupFailed(f"{child.name} not ready after {READY_TIMEOUT_S:.0f}s")
        stopping.wait(0.2)


def _announce_key(token: str, settings: Settings) -> None:
    print(
        "agentmill: created tenant 'default' and its first API key. It is shown once here "
        f"and saved to {settings.api_key_file} (mode 0600):\n\n    {token}\n",
        flush=True,
    )


def up(settings: Settings) -> int:
    """Run the whole runtime until SIGINT/SIGTERM or a child dies; return the exit status."""
    check_port_free(settings.api_host, settings.api_port)
    if settings.inference_url is None:
        check_port_free(settings.inference_host, settings.inference_port)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    pg = EmbeddedPostgres(settings.home) if settings.database_url is None else None
    lock = HomeLock(settings.home)
    children: list[Child] = []
    try:
        if pg is not None:
            url = pg.start()  # takes the home lock itself
        else:
            lock.acquire()
            assert settings.database_url is not None
            url = settings.database_url
        engine = create_db_engine(url, connect_timeout_s=settings.db_connect_timeout_s)
        try:
            migrate.upgrade(engine)
            token = bootstrap(engine, settings.api_key_file)
        finally:
            engine.dispose()
        if token is not None:
            _announce_key(token, settings)

        env = {**os.environ, "AGENTMILL_DATABASE_URL": url, "AGENTMILL_HOME": str(settings.home)}
        cli = [sys.executable, "-m", "api.cli"]
        waits: list[tuple[Child, str]] = []  # children with an HTTP readiness check
        if settings.inference_url is None:  # no external server configured: run ours
            inference_argv = [*cli, "inference", "--host", settings.inference_host]
            inference_argv += ["--port", str(settings.inference_port)]
            children.append(spawn("inference", inference_argv, env))
            inference_base = _local_url(settings.inference_host, settings.inference_port)
            waits.append((children[-1], inference_base + "/healthz"))
        children.append(spawn("worker", [*cli, "worker"], env))
        api_argv = [*cli, "api", "--host", settings.api_host, "--port", str(settings.api_port)]
        children.append(spawn("api", api_argv, env))
        base = _local_url(settings.api_host, settings.api_port)
        waits.append((children[-1], base + "/readyz"))
        for child, ready_url in waits:  # they start in parallel
            _wait_ready(child, ready_url, stopping)
        if not stopping.is_set():
            print(
                f"agentmill is up: {base} (inference: {settings.local_inference_url}, "
                f"data in {settings.home}); Ctrl-C stops it",
                flush=True,
            )
        return _supervise(children, stopping)
    finally:
        stop_all(children)
        if pg is not None:
            pg.stop()
        lock.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise(children: list[Child], stopping: threading.Event) -> int:
    while not stopping.wait(0.2):
        for child in children:
            if child.exit_code is not None:
                log.error(
                    "%s exited with status %s; stopping agentmill", child.name, child.exit_code
                )
                return 1
    return 0
