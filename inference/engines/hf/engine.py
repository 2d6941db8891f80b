"""The transformers engine: any local HF causal LM, continuously batched, on CUDA or CPU.

Requests go to transformers' `ContinuousBatchingManager` (paged KV cache, prefix sharing, one
background thread that steps all running requests together). Around it this module adds what
the `Engine` protocol asks: a bounded queue in front of a fixed number of slots, streamed text
with stop strings, per-request sampling and grammar-constrained output (`hf_sampling`,
`hf_grammar`), and cancellation when the caller stops reading.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    GenerationMixin,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)
from transformers.generation.configuration_utils import ContinuousBatchingConfig
from transformers.generation.continuous_batching import ContinuousBatchingManager

from inference.decoding.constraints import OutputConstraint, parse_output
from inference.decoding.textstream import TextAssembler
from inference.engines.base import (
    EngineStats,
    Finished,
    GenerationEvent,
    GenerationRequest,
    SamplingParams,
    TextDelta,
)
from inference.engines.hf.admission import SlotGate
from inference.engines.hf.grammar import Grammar, compile_grammar, ll_tokenizer, matcher
from inference.engines.hf.runs import RunRouter
from inference.engines.hf.sampling import BatchSampler, Decoding
from inference.engines.hf.text import IncrementalDetokenizer
from inference.errors import OutputInvalid, PromptTooLong, SchemaError

# A greedy request whose output failed validation is retried with sampling: greedy would only
# repeat the same output.
RETRY_TEMPERATURE = 0.7


def _load_model(
    model_dir: Path | None,
    config: Path | PretrainedConfig | None,
    dummy_weights: bool,
    device: torch.device,
    dtype: torch.dtype,
) -> PreTrainedModel:
    if dummy_weights:
        source = config if config is not None else model_dir
        if source is None:
            raise ValueError("dummy weights need a config (a directory or a PretrainedConfig)")
        cfg = (
            source
            if isinstance(source, PretrainedConfig)
            else AutoConfig.from_pretrained(source, local_files_only=True)
        )
        with device:
            model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)  # type: ignore[no-untyped-call]
    else:
        if model_dir is None:
            raise ValueError("model_dir is required unless dummy_weights is set")
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, local_files_only=True)
        model.to(device)  # type: ignore[arg-type]  # a decorator hides the signature
    if not (isinstance(model, PreTrainedModel) and isinstance(model, GenerationMixin)):
        raise ValueError(f"{type(model).__name__} cannot generate text")
    return model


class TransformersEngine:
    """A local HF causal LM behind transformers' continuous batching (see the module docstring)."""

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        config: Path | PretrainedConfig | None = None,
        tokenizer_dir: Path | None = None,
        dummy_weights: bool = False,
        model_id: str | None = None,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        slots: int = 4,
        max_waiting: int = 64,
        context_tokens: int = 4096,
        max_batch_tokens: int | None = None,
        page_size: int = 256,
        grammar: bool = True,
        max_attempts: int = 3,
    ) -> None:
        """Load the model and start the batching thread.

        model_dir: a local HF model directory (weights, config, tokenizer).
        config / dummy_weights: build the model from `config` (or model_dir's) with random
            weights, for benchmarks where the weights cannot be shipped.
        tokenizer_dir: where the tokenizer is, when not in model_dir.
        device / dtype: default CUDA with bfloat16 when available, else CPU with float32.
        slots: requests decoded together; max_waiting: requests queued for a slot (more are
            refused with `Overloaded`).
        context_tokens: prompt plus output per request (capped at the model's maximum); the
            KV cache holds `slots` full contexts, so no running request is ever evicted.
        max_batch_tokens: tokens per forward pass (longer prompts are prefilled in chunks).
        page_size: KV cache page, in tokens; also the granularity of prefix reuse.
        grammar: constrain output with llguidance; False validates and retries instead.
        max_attempts: tries for a constrained output that must be validated after decoding.
        """
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = dtype or (torch.bfloat16 if self._device.type == "cuda" else torch.float32)
        self._model = _load_model(model_dir, config, dummy_weights, self._device, dtype)
        tokenizer_source = tokenizer_dir or model_dir
        if tokenizer_source is None:
            raise ValueError("a tokenizer is needed: pass tokenizer_dir or model_dir")
        self._tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, local_files_only=True)
        text_config = self._model.config.get_text_config()
        self.model_id = model_id or (model_dir.name if model_dir else str(tokenizer_source))
        self.context_tokens = min(context_tokens, int(text_config.max_position_embeddings))
        self.slots = slots
        self.max_attempts = max_attempts
        self._eos_ids = self._eos_token_ids()
        vocab_size = int(text_config.vocab_size)
        self._ll_tokenizer = (
            ll_tokenizer(self._tokenizer, vocab_size, self._eos_ids)
            if grammar and isinstance(self._tokenizer, PreTrainedTokenizerFast)
            else None  # llguidance reads fast (Rust) tokenizers only: validate-and-retry instead
        )

        self._gate = SlotGate(slots, max_waiting)
        self._sampler = BatchSampler(vocab_size, self._eos_ids)
        self._manager = self._start_manager(max_batch_tokens, page_size)
        self._runs = RunRouter(self._manager, self._sampler)

    def _eos_token_ids(self) -> list[int]:
        configured = self._model.generation_config.eos_token_id
        if configured is None:
            configured = self._tokenizer.eos_token_id
        ids = configured if isinstance(configured, list) else [configured]
        return [int(i) for i in ids if i is not None and i >= 0]

    def _start_manager(
        self, max_batch_tokens: int | None, page_size: int
    ) -> ContinuousBatchingManager:
        if max_batch_tokens is None:
            max_batch_tokens = 2048 if self._device.type == "cuda" else 256
        cb_config = ContinuousBatchingConfig(
            page_size=page_size,
            num_blocks=self.slots * math.ceil(self.context_tokens / page_size),
            max_batch_tokens=max(max_batch_tokens, self.slots),
            max_requests_per_batch=self.slots,
            # BatchSampler runs Python in every step: no CUDA graphs, no double-buffering.
            use_cuda_graph=False,
            use_async_batching=False,
            allow_block_sharing=True,
        )
        generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
            do_sample=False, eos_token_id=self._eos_ids
        )
        model = self._model
        assert isinstance(model, GenerationMixin)  # checked at load
        manager = model.init_continuous_batching(
            generation_config=generation_config, continuous_batching_config=cb_config
        )
        manager.logit_processor = self._sampler  # read by the batch processor created in start()
        manager.start()
        return manager

    # -- the Engine protocol -------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` (special tokens in the text are parsed, no BOS is added)."""
        return self._encode(text)

    def chat_template(self) -> str | None:
        """The tokenizer's chat template, if it has one."""
        template = self._tokenizer.chat_template
        if isinstance(template, dict):
            template = template.get("default")
        return template if isinstance(template, str) else None

    def stats(self) -> EngineStats:
        """Queue, slot and prompt-token counters."""
        return EngineStats(
            waiting=self._gate.waiting,
            running=self._gate.running,
            slots=self.slots,
            prompt_tokens_sent=self._runs.prompt_tokens_sent,
            prompt_tokens_evaluated=self._sampler.prompt_tokens_evaluated,
            alive=self._manager.is_running(),
        )

    @property
    def peak_batch(self) -> int:
        """The most requests one forward pass has carried so far."""
        return self._sampler.peak_batch

    def close(self) -> None:
        """Stop the batching thread, fail what is in flight, and drop the model."""
        self._manager.stop(block=True, timeout=30, hard_stop=True)
        self._manager.destroy()
        self._runs.stop()
        if self._device.type == "cuda":
            torch.cuda.empty_cache()

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        """Stream the text, then one `Finished`; see `Engine.generate`."""
        started = time.perf_counter()
        prompt = self._encode(request.prompt)
        if len(prompt) + 1 > self.context_tokens:
            raise PromptTooLong(len(prompt), self.context_tokens)
        room = self.context_tokens - len(prompt)
        max_tokens = request.params.max_tokens
        max_new = room if max_tokens is None else max(1, min(max_tokens, room))
        constraint = request.constraint
        grammar = self._grammar(constraint)
        await self._gate.acquire()
        try:
            if constraint is None or (grammar is not None and grammar.exact):
                events = self._decode(prompt, max_new, request.params, constraint, grammar, started)
            else:
                events = self._validated(
                    prompt, max_new, request.params, constraint, grammar, started
                )
            async with aclosing(events):  # closing this stream closes (cancels) the run now
                async for event in events:
                    yield event
        finally:
            self._gate.release()

    # -- internals -------------------------------------------------------------------------------

    def _encode(self, text: str) -> list[int]:
        ids: list[int] = self._tokenizer.encode(text, add_special_tokens=False)
        return ids

    def _decode_ids(self, ids: list[int]) -> str:
        text = self._tokenizer.decode(ids, skip_special_tokens=False)
        assert isinstance(text, str)
        return text

    def _grammar(self, constraint: OutputConstraint | None) -> Grammar | None:
        if constraint is None or self._ll_tokenizer is None:
            return None
        return compile_grammar(constraint, self._ll_tokenizer)

    def _decoding(self, params: SamplingParams, grammar: Grammar | None, attempt: int) -> Decoding:
        temperature, seed = params.temperature, params.seed
        if attempt > 0:
            temperature = temperature or RETRY_TEMPERATURE
            seed = None if seed is None else seed + attempt
        generator = None
        if temperature > 0:
            generator = torch.Generator(device=self._device)
            generator.manual_seed(secrets.randbits(63) if seed is None else seed)
        grammar_matcher = None
        if grammar is not None and self._ll_tokenizer is not None:
            grammar_matcher = matcher(grammar, self._ll_tokenizer)
        return Decoding(temperature, params.top_p, generator, grammar_matcher)

    async def _decode(
        self,
        prompt: list[int],
        max_new: int,
        params: SamplingParams,
        constraint: OutputConstraint | None,
        grammar: Grammar | None,
        started: float,
        attempt: int = 0,
    ) -> AsyncGenerator[GenerationEvent, None]:
        """One generation, streamed as it decodes."""
        decoding = self._decoding(params, grammar, attempt)
        detokenizer = IncrementalDetokenizer(self._decode_ids)
        # A stop string could cut a JSON value or a tool call in half: constrained output has none.
        stops = TextAssembler(params.stop if constraint is None else ())
        first_token_at = 0.0
        text: list[str] = []
        run = self._runs.submit(prompt, max_new, decoding, self._eos_ids)
        try:
            while not run.finished and not stops.stopped:
                new = await run.next_tokens()
                first_token_at = first_token_at or time.perf_counter()
                piece = detokenizer.push([t for t in new if t not in self._eos_ids])
                if run.finished:
                    piece += detokenizer.flush()
                piece = stops.feed(piece.encode())
                if run.finished:
                    piece += stops.flush()
                if piece:
                    text.append(piece)
                    yield TextDelta(piece)
        finally:
            run.close()
        ended_by_eos = bool(run.tokens) and run.tokens[-1] in self._eos_ids
        reason: Literal["stop", "length"] = "stop" if stops.stopped or ended_by_eos else "length"
        if grammar is not None and grammar.exact and reason == "stop":
            try:
                parse_output("".join(text), constraint)
            except SchemaError as exc:
                raise OutputInvalid(
                    f"grammar-constrained output failed validation: {exc}"
                ) from None
        yield Finished(
            reason=reason,
            prompt_tokens=len(prompt),
            completion_tokens=len(run.tokens),
            cached_prompt_tokens=max(0, len(prompt) - decoding.prompt_tokens_evaluated),
            time_to_first_token_s=first_token_at - started,
        )

    async def _validated(
        self,
        prompt: list[int],
        max_new: int,
        params: SamplingParams,
        constraint: OutputConstraint,
        grammar: Grammar | None,
        started: float,
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Generate whole outputs until one satisfies the constraint; only that one is sent.

        Its time to first token is when that text is sent: nothing reaches the client before.
        """
        problem = ""
        for attempt in range(self.max_attempts):
            text: list[str] = []
            finished: Finished | None = None
            attempt_events = self._decode(
                prompt, max_new, params, constraint, grammar, started, attempt
            )
            async with aclosing(attempt_events):
                async for event in attempt_events:
                    if isinstance(event, TextDelta):
                        text.append(event.text)
                    else:
                        finished = event
            try:
                parse_output("".join(text), constraint)
            except SchemaError as exc:
                problem = str(exc)
                continue
            if text:
                yield TextDelta("".join(text))
            assert finished is not None
            yield replace(finished, time_to_first_token_s=time.perf_counter() - started)
            return
        raise OutputInvalid(
            f"no output satisfied the {constraint.kind} constraint in {self.max_attempts} "
            f"attempts; last problem: {problem}"
        )
