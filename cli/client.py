"""What the client commands (`agentmill chat`, `agentmill batch ...`) share: which server and
key to use, the SDK client, the agent named on the command line, and SDK errors as one line.

These commands talk to a server through the SDK only, like any other client; they need no
database or model on this machine.
"""

from __future__ import annotations

import argparse
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import agentmill
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.config import Settings
from core.errors import UserError

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class ClientSettings(BaseSettings):
    """The client commands' environment: `AGENTMILL_BASE_URL`, `AGENTMILL_API_KEY`. Apart
    from the server's `Settings`: a client machine has none of the server's configuration."""

    model_config = SettingsConfigDict(env_prefix="AGENTMILL_", extra="ignore", frozen=True)

    base_url: str = DEFAULT_BASE_URL
    """The server's address."""
    api_key: SecretStr | None = None
    """The key to send; unset: the key file `agentmill up` wrote in AGENTMILL_HOME."""


@dataclass(frozen=True)
class Target:
    """The server and key a command uses."""

    base_url: str
    api_key: str


def target(args: argparse.Namespace, settings: Settings) -> Target:
    """The server and key: the command line's, else the environment's, else the key file that
    `agentmill up` wrote for this machine's server."""
    env = ClientSettings()
    base_url = args.base_url or env.base_url
    key = args.api_key or (env.api_key.get_secret_value() if env.api_key else None)
    if not key and settings.api_key_file.is_file():
        key = settings.api_key_file.read_text().strip()
    if not key:
        raise UserError("no API key: pass --api-key or set AGENTMILL_API_KEY")
    return Target(base_url.rstrip("/"), key)


@contextmanager
def connected(where: Target) -> Iterator[agentmill.Client]:
    """An SDK client of the server; SDK errors leave as one-line `UserError`s."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per request amid the output
    try:
        with agentmill.Client(where.api_key, base_url=where.base_url) as client:
            yield client
    except agentmill.AgentmillError as exc:
        raise UserError(describe(exc, where.base_url)) from exc


def describe(error: agentmill.AgentmillError, base_url: str) -> str:
    """One line saying what went wrong, and what to do where it is clear."""
    if isinstance(error, agentmill.APIConnectionError):
        return f"cannot reach the agentmill server at {base_url} ({error}); is it running?"
    if isinstance(error, agentmill.AuthenticationError):
        hint = "check --api-key or AGENTMILL_API_KEY"
        return f"the server refused the API key ({error.message}); {hint}"
    if isinstance(error, agentmill.AgentmillAPIError):
        return f"{error.message} ({error.status} {error.type})"
    return str(error)


def find_agent(client: agentmill.Client, ref: str) -> agentmill.Agent:
    """The agent with id `ref`, else the one named `ref`; `UserError` if there is none."""
    try:
        agent_id = uuid.UUID(ref)
    except ValueError:
        agent_id = None
    if agent_id is not None:
        try:
            return client.agents.get(agent_id)
        except agentmill.NotFoundError:
            pass
    for agent in client.agents.list(limit=100):
        if agent.name == ref:
            return agent
    raise UserError(f"unknown agent {ref!r}: no agent has this name or id")


def read_file(path: Path) -> bytes:
    """The file's bytes; `UserError` naming it if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
