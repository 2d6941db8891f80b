"""Durable facts from a finished exchange, extracted by the model under a JSON schema.

Constrained decoding makes even the bundled 135M model produce JSON of the schema's shape; an
answer that still does not parse or validate is dropped and logged, never stored half-parsed.
Facts are stored as `fact` memories with the run as provenance; storing them twice (a retried
task) deduplicates. A run whose end user's data was erased after it was queued (or whose
session was deleted) yields nothing: its exchange is not even sent to the model, and a fact
whose write meets the erase is refused by the store (memory.erasure).
"""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.records import Agent, ChatSession, Run
from core.db import transaction
from core.errors import AgentmillError
from inference.client.model_client import ChatRequest, ModelClient
from memory import erasure
from memory.erasure import ErasedSource
from memory.records import NewMemory
from memory.store import MemoryStore

log = logging.getLogger(__name__)

MAX_FACTS = 5
INSTRUCTIONS = (
    "Extract durable facts about the user from this exchange: names, preferences, plans, "
    "relationships, things they own or did. Each fact is one short self-contained sentence "
    "in the third person. Leave out greetings, questions and anything only true right now. "
    "If there is nothing worth remembering, return an empty list."
)


class Fact(BaseModel):
    """One extracted fact."""

    model_config = ConfigDict(extra="forbid")

    content: Annotated[str, Field(min_length=3, max_length=500)]
    importance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.6


class Extraction(BaseModel):
    """The model's whole answer."""

    model_config = ConfigDict(extra="forbid")

    facts: Annotated[list[Fact], Field(max_length=MAX_FACTS)]


def extraction_request(agent: Agent, run: Run) -> ChatRequest:
    """The constrained request for one exchange."""
    exchange = f"User: {run.input}\nAssistant: {run.output or ''}"
    return ChatRequest(
        model=agent.model,
        messages=[
            {"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": exchange},
        ],
        temperature=0.0,
        max_tokens=300,
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "extraction",
                "schema": Extraction.model_json_schema(),
                "strict": True,
            },
        },
    )


def parse_extraction(text: str | None) -> list[Fact] | None:
    """The facts of a model answer, or None when it is not valid (the caller logs and drops)."""
    try:
        return Extraction.model_validate_json(text or "").facts
    except ValidationError:
        return None


def _fact(agent: Agent, chat: ChatSession, run: Run, content: str, importance: float) -> NewMemory:
    return NewMemory(
        agent_id=agent.id,
        content=content,
        user_id=chat.user_id,
        session_id=chat.id,
        kind="fact",
        importance=importance,
        source_run_id=run.id,
        metadata={"source": "extraction"},
    )


def _erased(memory: MemoryStore, agent: Agent, chat: ChatSession, run: Run) -> bool:
    with transaction(memory.engine) as session:
        probe = _fact(agent, chat, run, "-", 0.0)
        return erasure.refused(session, run.tenant_id, [probe])[0]


async def extract_facts(
    model: ModelClient, memory: MemoryStore, agent: Agent, chat: ChatSession, run: Run
) -> int:
    """Extract and store the facts of a succeeded run; returns how many were stored (none for
    a run erased since it ended)."""
    if _erased(memory, agent, chat, run):
        log.info("run %s: its data was erased; no facts extracted", run.id)
        return 0
    result = await model.complete(extraction_request(agent, run))
    facts = parse_extraction(result.content)
    if facts is None:
        log.warning(
            "run %s: fact extraction returned invalid JSON; dropped: %.200r", run.id, result.content
        )
        return 0
    stored = 0
    for fact in facts:
        try:
            memory.add(run.tenant_id, _fact(agent, chat, run, fact.content, fact.importance))
            stored += 1
        except ErasedSource:
            log.info("run %s: its data was erased meanwhile; the facts are dropped", run.id)
            break
        except AgentmillError as exc:
            log.warning("run %s: fact not stored: %s", run.id, exc)
    return stored
