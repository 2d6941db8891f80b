"""The run's model calls: each waits out the model server's outages (through the journal's
retries, so the lease stays renewed and a cancel is heard), and a step's text streams out as
message.delta events while it is generated (a retried call streams again after its
run.waiting event)."""

from __future__ import annotations

import logging
import threading

from agents import telemetry
from agents.errors import LeaseLost
from agents.runs.events import MessageDelta
from agents.runs.journal import RunJournal
from agents.runs.prompt import Messages
from inference.client.model_client import ChatRequest, ChatResult, ModelClient

log = logging.getLogger(__name__)


class _Deltas:
    """Text pieces from the model's stream, gathered on the loop thread, flushed by the run's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pieces: list[str] = []

    def add(self, piece: str) -> None:
        with self._lock:
            self._pieces.append(piece)

    def take(self) -> str:
        with self._lock:
            text, self._pieces = "".join(self._pieces), []
        return text

    def put_back(self, text: str) -> None:
        with self._lock:
            self._pieces.insert(0, text)


class ModelCalls:
    """The model client as one run attempt uses it."""

    def __init__(self, journal: RunJournal, client: ModelClient) -> None:
        self.journal = journal
        self.client = client

    def complete(self, request: ChatRequest, *, stream_step: int | None = None) -> ChatResult:
        """The model's answer; with `stream_step`, its text streams out as it comes."""
        with telemetry.model_call(request) as record:
            result = self.journal.retry(
                lambda: self._call_once(request, stream_step, record), "model"
            )
            record.done(result)
        return result

    def count_tokens(self, model: str, prompts: list[Messages]) -> list[int]:
        """Tokens of each prompt for `model`, in one call."""
        lease = self.journal.lease

        def once() -> list[int]:
            return lease.wait(self.client.count_tokens(model, prompts), cancellable=True)

        return self.journal.retry(once, "model")

    def _call_once(
        self, request: ChatRequest, stream_step: int | None, record: telemetry.ModelCallRecord
    ) -> ChatResult:
        journal = self.journal
        if stream_step is None:
            return journal.lease.wait(self.client.complete(request), cancellable=True)
        deltas = _Deltas()

        def piece(text: str) -> None:
            record.first_token()
            deltas.add(text)

        def flush() -> None:
            text = deltas.take()
            if not text:
                return
            if not journal.event(MessageDelta(stream_step, journal.run.attempts, text)):
                deltas.put_back(text)  # sent with the next flush, once the database is back

        try:
            return journal.lease.wait(
                self.client.complete(request, piece), cancellable=True, tick=flush
            )
        finally:
            try:
                flush()
            except LeaseLost:  # the call's own outcome matters more than its last deltas
                log.info(
                    "run %s: the last deltas of step %s not stored", journal.run.id, stream_step
                )
