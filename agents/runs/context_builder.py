"""Gathers what a run's context is made of (I/O), and folds old history into the summary.

Memories are retrieved once per attempt, for the run's user message; blocks are re-read at
every step, so an edit by a core_memory tool shows in the very next step.

Tokens are counted by the model client (the model's own tokenizer for `local`), in one call per
step at most: the step's fixed messages and each history message (the router's client fetches
only counts it has not seen: a history re-sent at every step is tokenized once). A history
message costs what it adds to a conversation that already has a system message, as it will in
the prompt: `[probe, message]` minus `[probe]`. Counted alone, each would also carry the
reply's opening and whatever default system prompt the chat template adds to a conversation
without one (SmolLM2: "Hi" counts 31 tokens alone, adds 6 to a conversation). With no history
there is nothing to trim and nothing is counted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from agents import agent_store, telemetry
from agents.records import Agent, ChatSession, Message, Run, Step
from agents.runs.prompt import (
    Messages,
    TokenCounter,
    fit_history,
    history_messages,
    replay,
    summary_request,
    system_prompt,
)
from agents.runs.tokens import prompt_budget
from core.errors import UserError
from inference.client.model_client import ChatRequest
from memory.blocks import list_blocks, render_blocks
from memory.filters import MemoryFilter
from memory.records import SearchHit

if TYPE_CHECKING:
    from agents.runs.executor import Services
    from agents.runs.journal import RunJournal
    from agents.runs.model_calls import ModelCalls

log = logging.getLogger(__name__)

_PROBE: Messages = [{"role": "system", "content": ""}]


def _key(messages: Messages) -> str:
    return json.dumps(messages, sort_keys=True)


class ContextBuilder:
    """Builds the messages of each step of one run attempt, reading and writing through its
    journal; its model calls (the summary, the token counts) wait out model outages."""

    def __init__(
        self,
        services: Services,
        journal: RunJournal,
        calls: ModelCalls,
        agent: Agent,
        chat: ChatSession,
    ) -> None:
        self.s = services
        self._journal = journal
        self._calls = calls
        self.agent = agent
        self.chat = chat
        self.run: Run = journal.run
        self._memories = self._recall()

    def _count(self, prompts: list[Messages]) -> list[int]:
        """Tokens of each prompt for the agent's model, in one model-client call."""
        return self._calls.count_tokens(self.agent.model, prompts)

    def _counter(self, fixed: Messages, history: Sequence[Message]) -> TokenCounter:
        """`fit_history`'s counter for these messages, every count it asks for fetched now."""
        if not history:
            return lambda _messages: 0  # fit_history keeps no message of an empty history
        singles = [history_messages([m]) for m in history]
        counts = self._count([fixed, *([*_PROBE, *one] for one in singles), _PROBE])
        base = counts[-1]
        known = {_key(one): n - base for one, n in zip(singles, counts[1:-1], strict=True)}
        known[_key(fixed)] = counts[0]
        return lambda messages: known[_key(messages)]

    def _recall(self) -> list[SearchHit]:
        store, k = self.s.memory, self.agent.memory.recall_k
        if store is None or k == 0:
            return []
        # Without a user, only memories of nobody: a None user_id would mean every user's.
        where = MemoryFilter.seen_by(self.agent.id, self.chat.user_id)
        try:
            with telemetry.memory_search(k, "recall") as span:
                hits = store.search(self.run.tenant_id, self.run.input, k=k, where=where)
                span.set_attribute("agentmill.memory.results", len(hits))
            return hits
        except UserError as exc:  # e.g. a message longer than a memory may be
            log.info("run %s: no memories recalled: %s", self.run.id, exc.message)
            return []

    def _blocks(self, session: Session) -> str:
        if self.s.memory is None:
            return ""
        found = list_blocks(session, self.run.tenant_id, self.agent.id, user_id=self.chat.user_id)
        wanted = self.agent.memory.blocks
        if wanted is not None:
            found = [b for b in found if b.label in wanted]
        return render_blocks(found)

    def messages(self, steps: list[Step], *, tools_schema: list[dict[str, Any]]) -> Messages:
        """The full context of the next step."""

        def read(session: Session) -> tuple[ChatSession, list[Message], str]:
            chat = agent_store.get_session(session, self.run.tenant_id, self.chat.id)
            pending = agent_store.unsummarised_history(
                session, chat.id, self.run.created_at, chat.summary_through
            )
            return chat, pending, self._blocks(session)

        chat, pending, blocks = self._journal.read(read)  # one transaction for a step's reads
        tail: Messages = [{"role": "user", "content": self.run.input}, *replay(steps)]
        tools_cost: Messages = [{"role": "system", "content": str(tools_schema)}]
        budget = prompt_budget(self.s.settings, self.agent.model)

        def system(summary: str) -> Messages:
            text = system_prompt(
                self.agent.instructions,
                now=self.s.clock.now(),
                blocks=blocks,
                memories=self._memories,
                summary=summary,
            )
            return [{"role": "system", "content": text}]

        summary = chat.summary
        recent = pending[-self.agent.memory.history_messages :] if pending else []
        overflow = pending[: len(pending) - len(recent)]
        fixed = system(summary) + tail + tools_cost
        kept, over_budget = fit_history(recent, fixed, budget, self._counter(fixed, recent))
        overflow += over_budget
        if overflow:
            summary = self._summarise(chat, summary, overflow)
            fixed = system(summary) + tail + tools_cost
            kept, _ = fit_history(kept, fixed, budget, self._counter(fixed, kept))
        return system(summary) + history_messages(kept) + tail

    def _summarise(self, chat: ChatSession, previous: str, overflow: list[Message]) -> str:
        """Fold the overflowing messages into the session's summary and keep it."""
        request = ChatRequest(
            model=self.agent.model,
            messages=summary_request(previous, overflow),
            temperature=0.0,
            max_tokens=min(400, self.s.settings.agent_max_output_tokens),
        )
        result = self._calls.complete(request)
        summary = (result.content or "").strip()
        if not summary:  # keep the history rather than lose it behind an empty summary
            log.warning("run %s: the model returned an empty summary", self.run.id)
            return previous
        self._journal.save_summary(chat.id, summary, overflow[-1].seq)
        return summary
