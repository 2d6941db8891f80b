"""Child processes of `agentmill up`: started in their own session, restarted when they die.

A child that exits (or, having been ready, stops answering its liveness URL) is restarted with
exponential backoff; one that dies `max_restarts` times within `window_s` is in a crash loop
and the supervisor gives up (`CrashLoop`), which stops agentmill with a message. A child that
fails before it was ever ready is not restarted: that is a configuration or build problem
(the inference server's start-up check says which), and restarting would only repeat it.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from cli.errors import CrashLoop, StartupFailed

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # A child must not outlive `agentmill up`, even if `up` is killed with SIGKILL.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def describe_exit(code: int) -> str:
    """'status 1' or 'signal SIGSEGV' for a Popen return code."""
    if code >= 0:
        return f"status {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


def answers(url: str, timeout_s: float = 2.0) -> bool:
    """Whether `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (ours)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass(frozen=True)
class RestartPolicy:
    """How a supervisor restarts a child."""

    backoff_s: float = 1.0
    """Wait before the first restart; doubled after each quick death."""
    max_backoff_s: float = 30.0
    """The longest wait between restarts."""
    max_restarts: int = 5
    """Deaths within `window_s` that make a crash loop."""
    window_s: float = 120.0
    """The window over which deaths are counted."""
    stable_s: float = 60.0
    """A child that ran this long resets its backoff."""
    unready_s: float = 30.0
    """A ready child whose liveness URL fails this long is killed and restarted."""


@dataclass(frozen=True)
class ChildSpec:
    """What to run and how to tell that it works."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    ready_url: str | None = None
    """Polled at start-up until 200; None means ready once started."""
    live_url: str | None = None
    """Polled while running; failing for `unready_s` means hung."""


@dataclass
class Child:
    """A supervised child: its spec, its current process and its history."""

    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    ready: bool = False
    deaths: collections.deque[float] = field(default_factory=collections.deque)
    backoff_s: float = 0.0
    restart_at: float | None = None
    unready_since: float | None = None
    last_probe: float = 0.0

    @property
    def name(self) -> str:
        """The child's name in log lines."""
        return self.spec.name

    @property
    def exit_code(self) -> int | None:
        """The exit status of the current process once it has ended, else None."""
        return None if self.process is None else self.process.poll()


def spawn(spec: ChildSpec) -> Child:
    """Start a child in its own session, so a terminal's Ctrl-C reaches only `up`."""
    child = Child(spec)
    _start(child)
    return child


def _start(child: Child) -> None:
    child.process = subprocess.Popen(
        list(child.spec.argv),
        env=dict(child.spec.env),
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    child.started_at, child.unready_since, child.restart_at = time.monotonic(), None, None
    log.info("started %s (pid %d)", child.name, child.process.pid)


def wait_ready(child: Child, timeout_s: float, stopping: Callable[[], bool]) -> None:
    """Block until the child's ready URL answers; StartupFailed if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while not stopping():
        code = child.exit_code
        if code is not None:
            raise StartupFailed(f"{child.name} exited with {describe_exit(code)} at start-up")
        if child.spec.ready_url is None or answers(child.spec.ready_url):
            child.ready = True
            return
        if time.monotonic() > deadline:
            raise StartupFailed(f"{child.name} not ready after {timeout_s:.0f}s")
        time.sleep(0.2)


class Supervisor:
    """Keeps a set of children running under one restart policy."""

    def __init__(
        self,
        children: Sequence[Child],
        policy: RestartPolicy | None = None,
        *,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        """`on_exit` is told the pid of each child process that ended (before its restart)."""
        self.children = list(children)
        self.policy = policy or RestartPolicy()
        self._on_exit = on_exit
        self.restarts = 0
        """Restarts made so far (all children)."""

    def tick(self, now: float | None = None) -> None:
        """Look at every child once: restart the dead and the hung; CrashLoop when one keeps
        dying."""
        now = time.monotonic() if now is None else now
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    try:
                        _start(child)
                    except OSError as exc:  # fork failed (memory, pids): a death like any other
                        child.restart_at = None
                        self._died(child, f"could not be started ({exc.strerror})", now)
                        continue
                    self.restarts += 1
                continue
            code = child.exit_code
            if code is not None:
                self._died(child, f"exited with {describe_exit(code)}", now)
            elif child.ready and child.spec.live_url is not None:
                self._probe(child, now)
            elif not child.ready and child.spec.ready_url and now - child.last_probe >= 1.0:
                child.last_probe = now  # restarted: ready again once it answers
                child.ready = answers(child.spec.ready_url, timeout_s=1.0)

    def _probe(self, child: Child, now: float) -> None:
        if now - child.last_probe < 2.0:
            return
        child.last_probe = now
        assert child.spec.live_url is not None
        if answers(child.spec.live_url, timeout_s=2.0):
            child.unready_since = None
            return
        child.unready_since = child.unready_since or now
        if now - child.unready_since >= self.policy.unready_s:
            assert child.process is not None
            child.process.kill()
            child.process.wait()
            self._died(child, f"stopped answering {child.spec.live_url}", now)

    def _died(self, child: Child, why: str, now: float) -> None:
        if self._on_exit is not None and child.process is not None:
            self._on_exit(child.process.pid)
        p = self.policy
        child.deaths.append(now)
        while child.deaths and now - child.deaths[0] > p.window_s:
            child.deaths.popleft()
        if len(child.deaths) >= p.max_restarts:
            raise CrashLoop(
                f"{child.name} {why}; it died {len(child.deaths)} times in {p.window_s:.0f}s, "
                "so agentmill stops (its log is above)"
            )
        stable = now - child.started_at >= p.stable_s
        child.backoff_s = p.backoff_s if stable or not child.backoff_s else child.backoff_s * 2
        child.backoff_s = min(child.backoff_s, p.max_backoff_s)
        child.restart_at = now + child.backoff_s
        child.ready = child.spec.ready_url is None
        log.error(
            "%s %s; restarting it in %.0fs (death %d of %d allowed in %.0fs)",
            child.name,
            why,
            child.backoff_s,
            len(child.deaths),
            p.max_restarts - 1,
            p.window_s,
        )


def stop_all(children: Sequence[Child], timeout_s: float = 10.0) -> None:
    """SIGTERM each child, newest first; SIGKILL any still running after `timeout_s`."""
    running = [(c, c.process) for c in reversed(children) if c.process is not None]
    for _, process in running:
        if process.poll() is None:
            process.terminate()
    for child, process in running:
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0fs; killing it", child.name, timeout_s)
            process.kill()
            process.wait()
