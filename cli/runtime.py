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
from types import FrameType

from cli.bootstrap import bootstrap
from cli.errors import CrashLoop
from cli.supervisor import (
    Child,
    ChildSpec,
    RestartPolicy,
    Supervisor,
    spawn,
    stop_all,
    wait_ready,
)
from core import migrate
from core.config import Settings
from core.db import create_db_engine
from core.embedded_pg import EmbeddedPostgres, HomeLock
from core.errors import AgentmillError
from core.metrics import ENV_VAR, mark_process_dead, prepare_metrics_dir, reset_metrics_dir

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0


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


def _announce_key(token: str, settings: Settings) -> None:
    print(
        "agentmill: created tenant 'default' and its first API key. It is shown once here "
        f"and saved to {settings.api_key_file} (mode 0600):\n\n    {token}\n",
        flush=True,
    )


def _port_taken(host: str, port: int) -> bool:
    try:
        check_port_free(host, port)
    except AgentmillError:
        return True
    return False


def inference_port(settings: Settings) -> int:
    """The port for our inference server: the configured one, or a free one when the default
    is taken (an explicitly configured port that is taken is an error)."""
    host, port = settings.inference_host, settings.inference_port
    if "inference_port" in settings.model_fields_set:
        check_port_free(host, port)
        return port
    if not _port_taken(host, port):
        return port
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        free: int = probe.getsockname()[1]
    log.warning("port %d is taken; the inference server uses %d instead", port, free)
    return free


def _specs(settings: Settings, url: str, metrics: str) -> list[ChildSpec]:
    env = {**os.environ, "AGENTMILL_DATABASE_URL": url, "AGENTMILL_HOME": str(settings.home)}
    env[ENV_VAR] = metrics  # the API and the worker share it (the inference server opts out)
    env["AGENTMILL_INFERENCE_PORT"] = str(settings.inference_port)  # the one `up` picked
    cli = [sys.executable, "-m", "cli.main"]
    specs = []
    if settings.inference_url is None:  # no external server configured: run ours
        argv = [*cli, "inference", "--host", settings.inference_host]
        argv += ["--port", str(settings.inference_port)]
        base = _local_url(settings.inference_host, settings.inference_port)
        specs.append(ChildSpec("inference", argv, env, base + "/readyz", base + "/readyz"))
    specs.append(ChildSpec("worker", [*cli, "worker"], env))
    api_argv = [*cli, "api", "--host", settings.api_host, "--port", str(settings.api_port)]
    base = _local_url(settings.api_host, settings.api_port)
    specs.append(ChildSpec("api", api_argv, env, base + "/readyz", base + "/healthz"))
    return specs


def up(settings: Settings) -> int:
    """Run the whole runtime until SIGINT/SIGTERM or a child crash-loops; the exit status."""
    check_port_free(settings.api_host, settings.api_port)
    if settings.inference_url is None:
        settings = settings.model_copy(update={"inference_port": inference_port(settings)})
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
        metrics = prepare_metrics_dir(settings)
        reset_metrics_dir(metrics)  # under the home lock: no other `up` writes there now
        children = [spawn(spec) for spec in _specs(settings, url, str(metrics))]
        for child in children:  # they start in parallel
            wait_ready(child, READY_TIMEOUT_S, stopping.is_set)
        if not stopping.is_set():
            base = _local_url(settings.api_host, settings.api_port)
            print(
                f"agentmill is up: {base} (inference: {settings.local_inference_url}, "
                f"data in {settings.home}); Ctrl-C stops it",
                flush=True,
            )
        policy = RestartPolicy(
            max_restarts=settings.supervisor_max_restarts, window_s=settings.supervisor_window_s
        )
        supervisor = Supervisor(children, policy, on_exit=mark_process_dead)
        return _supervise(supervisor, pg, stopping)
    finally:
        stop_all(children)
        if pg is not None:
            pg.stop()
        lock.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise(
    supervisor: Supervisor, pg: EmbeddedPostgres | None, stopping: threading.Event
) -> int:
    """Restart what dies until asked to stop; 1 when a child crash-loops."""
    pg_retry_at = 0.0
    while not stopping.wait(0.2):
        if pg is not None and time.monotonic() >= pg_retry_at:
            try:
                pg.ensure_running()
            except Exception:  # it may be mid-recovery: look again shortly, never give up
                log.exception("embedded postgres did not start; trying again in 2s")
                pg_retry_at = time.monotonic() + 2.0
        try:
            supervisor.tick()
        except CrashLoop as exc:
            log.error("%s", exc)
            print(f"agentmill: {exc}", file=sys.stderr, flush=True)
            return 1
    return 0
