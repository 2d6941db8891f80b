"""The llama.cpp engine: concurrent requests decoded together in multi-sequence batches.

One worker thread owns the llama.cpp context. Each step it admits waiting requests into free
slots (a slot is one KV-cache sequence; the slot whose cache shares the longest prefix with
the prompt is chosen, and only the rest of the prompt is evaluated), builds one batch with
the next token of every decoding slot plus prompt chunks of prefilling slots, decodes it, and
samples each slot's next token with that request's own sampler (top-p, temperature, seed),
after its `Guide` (if the output is constrained) has masked the logits to what the grammar
allows and what still leaves room to close the output within `max_tokens`. Requests talk to
the thread through an asyncio queue each.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import threading
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from llguidance.llamacpp import lltokenizer_from_vocab

from core.errors import UserError
from inference.bundled import BUNDLED_MODEL_ID
from inference.decoding.grammar import Grammar, GrammarError, compile_grammar
from inference.decoding.guide import Guide
from inference.decoding.textstream import TextAssembler
from inference.engines.base import (
    EngineStats,
    Finished,
    GenerationEvent,
    GenerationRequest,
    SamplingParams,
    TextDelta,
)
from inference.engines.llama.native import Batch, NativeModel, Sampler, bundled_gguf
from inference.engines.llama.slots import SlotView, choose_slot
from inference.errors import EngineFailed, Overloaded, PromptTooLong

BUNDLED_CALL_BIAS = 3.0
"""Logit offset for opening a `<tool_call>` at the start of a `tool_choice: auto` reply, for
the bundled SmolLM2-135M: it almost never starts a call by itself (0 of 25 tool-needing
requests of a development set, none of them in the benchmark). With 3.0 it called on 24 of 25
and on 1 of 15 requests that needed no tool. Other models get 0 unless told otherwise."""


@dataclass(eq=False)
class _Job:
    tokens: list[int]
    params: SamplingParams
    grammar: Grammar | None
    max_new: int
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[GenerationEvent | BaseException]
    cancelled: bool = False

    def emit(self, event: GenerationEvent | BaseException) -> None:
        with contextlib.suppress(RuntimeError):  # the client's loop is gone: nobody listens
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)


@dataclass(eq=False)
class _Slot:
    index: int
    cached: list[int] = field(default_factory=list)  # tokens whose KV this sequence holds
    last_used: float = 0.0
    job: _Job | None = None
    pending: list[int] = field(default_factory=list)  # prompt tokens still to evaluate
    sampler: Sampler | None = None
    guide: Guide | None = None  # the grammar and budget keeper of a constrained output
    text: TextAssembler | None = None
    next_token: int | None = None  # sampled, fed to the model in the next step
    generated: int = 0
    reused: int = 0
    started: float = 0.0
    first_token_s: float = 0.0


def default_threads() -> int:
    """All cores but one. llama.cpp's threads spin at barriers: when another process takes a
    core they use, decode collapses (measured on 2 cores: 0.7 tok/s with 2 threads while one
    core was busy, 61 tok/s with 1). The runtime always has neighbours (API, worker, Postgres)."""
    return max(1, (os.cpu_count() or 1) - 1)


class LlamaEngine:
    """The default engine: a GGUF model on llama.cpp, `slots` requests decoded at once."""

    def __init__(
        self,
        gguf: Path | None = None,
        *,
        slots: int = 4,
        context_per_slot: int = 4096,
        batch_tokens: int = 512,
        threads: int | None = None,
        max_waiting: int = 64,
        model_id: str | None = None,
        reuse_prefix: bool = True,
        call_bias: float | None = None,
    ) -> None:
        path = gguf or bundled_gguf()
        self.model_id = model_id or (BUNDLED_MODEL_ID if gguf is None else path.stem)
        self._model = NativeModel.load(
            path,
            n_seq=slots,
            n_ctx_seq=context_per_slot,
            n_batch=batch_tokens,
            n_threads=threads or default_threads(),
        )
        self.context_tokens = self._model.n_ctx_seq
        with warnings.catch_warnings():
            # llguidance reads token attributes through llama-cpp-python's older name for
            # the call, which warns on every token; the call itself is sound.
            warnings.simplefilter("ignore", DeprecationWarning)
            self._ll_tokenizer = lltokenizer_from_vocab(
                self._model.vocab, eos_token=self._model.end_tokens()
            )
        self._slots = [_Slot(i) for i in range(slots)]
        self._waiting: collections.deque[_Job] = collections.deque()
        self._max_waiting = max_waiting
        self._reuse_prefix = reuse_prefix
        if call_bias is None:
            call_bias = BUNDLED_CALL_BIAS if gguf is None else 0.0
        self._call_bias = call_bias
        self._cond = threading.Condition()
        self._stopping = False
        self._stopped: EngineFailed | None = None  # set once the worker has ended, for good
        self._model_lock = threading.Lock()  # held to use the model off the worker, and to free it
        self._freed = False
        self._prompt_sent = 0
        self._prompt_evaluated = 0
        self._thread = threading.Thread(target=self._run, name="llama-engine", daemon=True)
        self._thread.start()

    # -- the async side ---------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` (special tokens parsed, BOS included if the model adds one);
        EngineFailed once the engine is closed (its model is freed)."""
        with self._model_lock:
            self._check_open()
            return self._model.tokenize(text)

    def chat_template(self) -> str | None:
        """The GGUF's chat template."""
        with self._model_lock:
            self._check_open()
            return self._model.chat_template()

    def _check_open(self) -> None:
        if self._freed:
            raise EngineFailed("inference engine stopped")

    async def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        """Queue the request and stream its events; closing the stream cancels it."""
        tokens = self.tokenize(request.prompt)
        if len(tokens) + 1 > self.context_tokens:
            raise PromptTooLong(len(tokens), self.context_tokens)
        room = self.context_tokens - len(tokens)
        max_new = min(request.params.max_tokens or room, room)  # clamped to the window
        grammar = None
        if request.constraint is not None:
            try:
                grammar = compile_grammar(request.constraint, self._ll_tokenizer)
            except GrammarError as exc:
                raise UserError(f"unsupported JSON schema: {exc}", param="schema") from None
        job = _Job(
            tokens, request.params, grammar, max_new, asyncio.get_running_loop(), asyncio.Queue()
        )
        with self._cond:
            if self._stopping or self._stopped is not None:
                # Closed, or its worker died: nothing would ever serve the request.
                raise self._stopped or EngineFailed("inference engine stopped")
            if len(self._waiting) >= self._max_waiting:
                raise Overloaded(len(self._waiting))
            self._waiting.append(job)
            self._cond.notify()
        finished = False
        try:
            while True:
                event = await job.queue.get()
                if isinstance(event, BaseException):
                    raise event
                if isinstance(event, Finished):
                    finished = True
                yield event
                if finished:
                    return
        finally:
            if not finished:
                job.cancelled = True
                with self._cond:
                    if job in self._waiting:
                        self._waiting.remove(job)
                    self._cond.notify()

    def stats(self) -> EngineStats:
        """Queue depth, busy slots and prefix-cache counters."""
        with self._cond:
            return EngineStats(
                waiting=len(self._waiting),
                running=sum(1 for s in self._slots if s.job is not None),
                slots=len(self._slots),
                prompt_tokens_sent=self._prompt_sent,
                prompt_tokens_evaluated=self._prompt_evaluated,
                alive=self._thread.is_alive(),
            )

    def close(self) -> None:
        """Stop the worker (running requests end with an error) and free the model; idempotent."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify()
        self._thread.join()
        with self._model_lock:
            self._freed = True
            self._model.free()

    # -- the worker thread ------------------------------------------------------------------

    def _run(self) -> None:
        batch = Batch(self._model.n_batch)
        try:
            while self._wait_for_work():
                self._release_cancelled()
                batch.clear()
                plan = self._fill(batch)
                if batch.size == 0:
                    continue
                try:
                    batch.decode(self._model)
                except RuntimeError as exc:
                    self._fail([slot for slot, _ in plan], EngineFailed(str(exc)))
                    continue
                self._sample(plan)
        except BaseException:
            self._end(EngineFailed("the inference engine's worker failed"))
            raise
        finally:
            batch.free()
            self._end(EngineFailed("inference engine stopped"))

    def _end(self, error: EngineFailed) -> None:
        """The worker is ending: fail every request it holds or would have taken, and refuse
        later ones with `error` (the first reason given sticks)."""
        with self._cond:
            reason = self._stopped = self._stopped or error
            waiting, self._waiting = list(self._waiting), collections.deque()
        for slot in self._slots:
            if slot.job is not None:
                self._fail([slot], reason)
        for job in waiting:
            job.emit(reason)

    def _wait_for_work(self) -> bool:
        with self._cond:
            while not self._stopping:
                active = any(s.job is not None for s in self._slots)
                if self._waiting and any(s.job is None for s in self._slots):
                    self._admit()
                    return True
                if active:
                    return True
                self._cond.wait()
            return False

    def _admit(self) -> None:
        while self._waiting:
            free = [SlotView(s.index, s.cached, s.last_used) for s in self._slots if s.job is None]
            if not free:
                return
            job = self._waiting.popleft()
            if job.cancelled:
                continue
            place = choose_slot(free, job.tokens if self._reuse_prefix else [])
            slot = self._slots[place.slot]
            self._model.forget(slot.index, place.reused)
            slot.cached = slot.cached[: place.reused]
            slot.pending = job.tokens[place.reused :]
            p = job.params
            slot.sampler = Sampler(
                self._model, temperature=p.temperature, top_p=p.top_p, seed=p.seed
            )
            slot.guide = None
            if job.grammar is not None:
                slot.guide = Guide(
                    job.grammar, self._ll_tokenizer, budget=job.max_new, call_bias=self._call_bias
                )
            # A stop string could cut a JSON value in half: constrained output has none.
            slot.job, slot.text = job, TextAssembler(() if job.grammar else p.stop)
            slot.next_token, slot.generated, slot.reused = None, 0, place.reused
            slot.started, slot.first_token_s = time.monotonic(), 0.0
            self._prompt_sent += len(job.tokens)
            self._prompt_evaluated += len(slot.pending)

    def _release_cancelled(self) -> None:
        for slot in self._slots:
            if slot.job is not None and slot.job.cancelled:
                self._free(slot)  # its cache stays valid for a later prompt with that prefix

    def _fill(self, batch: Batch) -> list[tuple[_Slot, int]]:
        plan: list[tuple[_Slot, int]] = []
        for slot in self._slots:
            if slot.job is not None and slot.next_token is not None:
                index = batch.add(slot.next_token, len(slot.cached), slot.index, True)
                slot.cached.append(slot.next_token)
                slot.next_token = None
                plan.append((slot, index))
        budget = batch.capacity - batch.size
        prefilling = [s for s in self._slots if s.job is not None and s.pending]
        for slot in sorted(prefilling, key=lambda s: s.started):
            if budget <= 0:
                break
            chunk, slot.pending = slot.pending[:budget], slot.pending[budget:]
            for offset, token in enumerate(chunk):
                last = not slot.pending and offset == len(chunk) - 1
                index = batch.add(token, len(slot.cached), slot.index, last)
                slot.cached.append(token)
                if last:
                    plan.append((slot, index))
            budget -= len(chunk)
        return plan

    def _sample(self, plan: list[tuple[_Slot, int]]) -> None:
        now = time.monotonic()
        for slot, index in plan:
            job, text = slot.job, slot.text
            assert job is not None
            assert text is not None
            if job.cancelled:
                continue
            token = self._draw(slot, index)
            if slot.generated == 0:
                slot.first_token_s = now - slot.started
            if token is None:
                self._close_output(slot)
                continue
            if self._model.is_end(token):
                self._finish(slot, "stop")
                continue
            slot.generated += 1
            if slot.guide is not None:
                slot.guide.accept(token)
            delta = text.feed(self._model.piece(token))
            if delta:
                job.emit(TextDelta(delta))
            if text.stopped or (slot.guide is not None and slot.guide.finished):
                self._finish(slot, "stop")
            elif slot.generated >= job.max_new or len(slot.cached) + 1 >= self.context_tokens:
                self._finish(slot, "length")
            else:
                slot.next_token = token

    def _draw(self, slot: _Slot, index: int) -> int | None:
        """The next token; None when a constrained output must be closed now to fit."""
        sampler, guide = slot.sampler, slot.guide
        assert sampler is not None
        if guide is None:
            return sampler.sample(self._model, index)
        logits = self._model.logits(index)
        logits[~guide.allowed()] = -np.inf
        bias = guide.bias()
        if bias is not None:
            logits[bias[0]] += bias[1]

        def forbid(token: int) -> None:
            logits[token] = -np.inf

        return guide.pick(lambda: sampler.sample(self._model, index), forbid)

    def _close_output(self, slot: _Slot) -> None:
        """End a constrained output with the closing its guide reserved room for."""
        job, text, guide = slot.job, slot.text, slot.guide
        assert job is not None
        assert text is not None
        assert guide is not None
        closing = guide.close()
        slot.generated += len(closing)
        delta = "".join(text.feed(self._model.piece(t)) for t in closing)
        if delta:
            job.emit(TextDelta(delta))
        self._finish(slot, "length")

    def _finish(self, slot: _Slot, reason: str) -> None:
        job, text = slot.job, slot.text
        assert job is not None
        assert text is not None
        rest = text.flush()
        if rest:
            job.emit(TextDelta(rest))
        job.emit(
            Finished(
                reason="stop" if reason == "stop" else "length",
                prompt_tokens=len(job.tokens),
                completion_tokens=slot.generated,
                cached_prompt_tokens=slot.reused,
                time_to_first_token_s=slot.first_token_s,
            )
        )
        self._free(slot)

    def _fail(self, slots: list[_Slot], error: BaseException) -> None:
        for slot in slots:
            if slot.job is not None:
                slot.job.emit(error)
            self._model.forget(slot.index, 0)
            slot.cached = []
            self._free(slot)

    def _free(self, slot: _Slot) -> None:
        if slot.sampler is not None:
            slot.sampler.free()
        with self._cond:
            slot.job, slot.sampler, slot.guide, slot.text = None, None, None, None
            slot.pending, slot.next_token = [], None
            slot.last_used = time.monotonic()
