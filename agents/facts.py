"""Durable facts from a finished exchange, extracted by the model under a JSON schema.

Constrained decoding makes even the bundled 135M model produce JSON of the schema's shape; an
answer that still does not parse or validate is dropped and logged, never stored half-parsed.
Facts are stored as `fact` memories with the run as provenance; storing them twice (a retried
task) deduplicates.
"""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.records import Agent, ChatSession, Run
from core.errors import AgentmillError
from inference.model_client import ChatRequest, ModelClient
from memory.records import NewMemory
from memory.service import MemoryStore

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


async def extract_facts(
    model: ModelClient, memory: MemoryStore, agent: Agent, chat: ChatSession, run: Run
) -> int:
    """Extract and store the facts of a succeeded run; returns how many were stored."""
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
            memory.add(
                run.tenant_id,
                NewMemory(
                    agent_id=agent.id,
                    content=fact.content,
                    user_id=chat.user_id,
                    session_id=chat.id,
                    kind="fact",
                    importance=fact.importance,
                    source_run_id=run.id,
                    metadata={"source": "extraction"},
                ),
            )
            stored += 1
        except AgentmillError as exc:
            log.warning("run %s: fact not stored: %s", run.id, exc)
    return stored
