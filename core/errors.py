"""The error root shared by every layer. api/ maps these to HTTP; nothing else does.

AgentmillError
 ├── ConfigError                 bad settings at start-up
 ├── UserError                   misuse by a caller (400 unless a subclass says otherwise)
 │    ├── NotFound               an id that does not exist for this tenant (404)
 │    ├── Conflict               the request clashes with current state (409)
 │    └── AuthenticationError    missing, malformed, unknown or revoked API key (401)
 ├── DatabaseUnavailable         the database does not answer (503)
 ├── MigrationRequired          the schema is behind the code
 └── HomeInUse                   another process owns the data directory
"""

from __future__ import annotations

from pathlib import Path


class AgentmillError(Exception):
    """Root of every error agentmill raises on purpose."""


class ConfigError(AgentmillError):
    """Settings failed validation; the message lists each bad variable."""


class UserError(AgentmillError):
    """The caller asked for something invalid; safe to show the message to them."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class NotFound(UserError):
    """A resource does not exist, or belongs to another tenant (indistinguishable on purpose)."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident


class Conflict(UserError):
    """The request clashes with the current state of a resource."""


class AuthenticationError(UserError):
    """The request carries no usable API key."""


class TooManyRequests(AgentmillError):
    """A bounded queue or a rate limit is full; the caller should retry after a pause."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DatabaseUnavailable(AgentmillError):
    """The database did not answer."""


class MigrationRequired(AgentmillError):
    """The database schema is not at the revision this code expects."""

    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(
            f"database schema is at {current or 'nothing'}, code expects {head}: "
            "run `agentmill migrate`"
        )
        self.current = current
        self.head = head


class HomeInUse(AgentmillError):
    """Another agentmill process already owns this data directory."""

    def __init__(self, home: Path, owner_pid: int | None) -> None:
        who = f"process {owner_pid}" if owner_pid else "another process"
        super().__init__(
            f"{home} is in use by {who} (`agentmill up` or another command that owns the "
            "embedded database); stop it first or set AGENTMILL_HOME to another directory"
        )
        self.home = home
        self.owner_pid = owner_pid
