"""Python SDK for agentmill's REST API (httpx + pydantic only; imports nothing of the server)."""

from agentmill.client import Client
from agentmill.errors import AgentmillAPIError, AuthenticationError, NotFoundError
from agentmill.models import Me

__all__ = ["AgentmillAPIError", "AuthenticationError", "Client", "Me", "NotFoundError"]
