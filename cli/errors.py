"""Errors of the command line (each ends `agentmill` with its one-line message, exit 1).

AgentmillError
 └── CliError                 root of this package
      ├── StartupFailed       a child of `up` did not become ready
      └── CrashLoop           a child kept dying; the supervisor gave up on it
"""

from __future__ import annotations

from core.errors import AgentmillError


class CliError(AgentmillError):
    """Root of the command line's errors."""


class StartupFailed(CliError):
    """A child of `up` did not become ready."""


class CrashLoop(CliError):
    """A child kept dying; the supervisor gave up on it."""
