"""Child processes of `agentmill up`: started in their own session, stopped in reverse order."""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # A child must not outlive `agentmill up`, even if `up` is killed with SIGKILL.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """A named child process."""

    name: str
    process: subprocess.Popen[bytes]

    @property
    def exit_code(self) -> int | None:
        """The exit status once the child has ended, else None."""
        return self.process.poll()


def spawn(name: str, argv: Sequence[str], env: Mapping[str, str]) -> Child:
    """Start a child in its own session, so a terminal's Ctrl-C reaches only `up`."""
    process = subprocess.Popen(
        list(argv), env=dict(env), start_new_session=True, preexec_fn=_die_with_parent
    )
    log.info("started %s (pid %d)", name, process.pid)
    return Child(name, process)


def stop_all(children: Sequence[Child], timeout_s: float = 10.0) -> None:
    """SIGTERM each child, newest first; SIGKILL any still running after `timeout_s`."""
    for child in reversed(children):
        if child.exit_code is None:
            child.process.terminate()
    for child in reversed(children):
        try:
            child.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0fs; killing it", child.name, timeout_s)
            child.process.kill()
            child.process.wait()
