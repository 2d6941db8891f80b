"""Per-request sampling and grammar masks inside transformers' continuous-batching loop.

The manager samples every row of a batch the same way (one global temperature, one RNG) and
knows nothing of grammars. `BatchSampler` takes the place of its logits-processor list: before
each forward pass it is shown the scheduled requests (it advances their grammar matchers and
computes the masks); after the forward pass it masks the logits and samples each request's row
with that request's temperature, top_p and seeded generator, leaving a single finite logit, so
the manager's greedy argmax picks exactly the sampled token. Greedy rows without a grammar are
left untouched.

This runs Python inside the step, so the engine turns off CUDA graphs and async batching.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import torch
from llguidance import LLMatcher
from transformers import LogitsProcessorList
from transformers.generation.continuous_batching import RequestState
from transformers.generation.continuous_batching.cb_logits_processors import (
    ContinuousBatchingLogitsProcessorList,
)
from transformers.generation.continuous_batching.requests import FutureRequestState

_BITS = torch.arange(8, dtype=torch.uint8)


@dataclass
class Decoding:
    """How one request picks its tokens; the sampler's per-request state."""

    temperature: float = 0.0
    top_p: float = 1.0
    generator: torch.Generator | None = None
    matcher: LLMatcher | None = None
    consumed: int = 0  # output tokens already fed to the matcher
    mask: torch.Tensor | None = None  # allowed next tokens (bool, vocabulary-sized)
    prompt_tokens_evaluated: int = 0  # prompt tokens run through the model (not from cache)


def _output_tokens(state: RequestState) -> list[int]:
    # A request the manager soft-reset carries its earlier output inside its prompt.
    if state._true_initial_tokens:
        return state.initial_tokens[state._true_initial_tokens :] + state.generated_tokens
    return state.generated_tokens


def _mask_from_bits(bits: bytes, vocab_size: int) -> torch.Tensor:
    packed = torch.frombuffer(bytearray(bits), dtype=torch.uint8)
    return ((packed.unsqueeze(-1) >> _BITS) & 1).flatten()[:vocab_size].bool()


class BatchSampler(ContinuousBatchingLogitsProcessorList):
    """The continuous-batching logits step: grammar masks and per-request sampling."""

    def __init__(self, vocab_size: int, eos_ids: list[int]) -> None:
        super().__init__(LogitsProcessorList())
        self.do_processing = True
        self._vocab_size = vocab_size
        self._eos_mask = torch.zeros(vocab_size, dtype=torch.bool)
        self._eos_mask[[i for i in eos_ids if i < vocab_size]] = True
        self._requests: dict[str, Decoding] = {}
        self._rows: list[Decoding | None] = []  # logits row i <-> the i-th request with a new token
        self._lock = threading.Lock()
        self.prompt_tokens_evaluated = 0
        self.peak_batch = 0

    def add(self, request_id: str, decoding: Decoding) -> None:
        """Register a request before it is submitted to the manager."""
        with self._lock:
            self._requests[request_id] = decoding

    def remove(self, request_id: str) -> None:
        """Forget a finished or cancelled request."""
        with self._lock:
            self._requests.pop(request_id, None)

    # -- the manager's hooks (its background thread) -------------------------------------------

    def check_kwargs(self, kwargs: dict[str, Any]) -> None:
        """Requests carry no processor kwargs: everything lives in `Decoding`."""

    def fill_defaults(self, int32_tensor: torch.Tensor) -> None:
        """No tensor arguments to default."""

    def prepare_tensor_args(
        self, requests_in_batch: list[FutureRequestState], arg_storage: torch.Tensor
    ) -> torch.Tensor:
        """Before the forward pass: count prefill work, advance matchers, compute masks."""
        rows: list[Decoding | None] = []
        constrained: list[tuple[Decoding, RequestState]] = []
        with self._lock:
            for future in requests_in_batch:
                decoding = self._requests.get(future.state.request_id)
                if not future.state.generated_tokens:  # a prefill chunk (no output yet)
                    self.prompt_tokens_evaluated += future.query_length
                    if decoding is not None:
                        decoding.prompt_tokens_evaluated += future.query_length
                if future.has_new_token:
                    rows.append(decoding)
                    if decoding is not None and decoding.matcher is not None:
                        constrained.append((decoding, future.state))
        for decoding, state in constrained:  # outside the lock: submitters need not wait
            self._advance(decoding, state)
        self._rows = rows
        self.peak_batch = max(self.peak_batch, len(requests_in_batch))
        return arg_storage

    def _advance(self, decoding: Decoding, state: RequestState) -> None:
        matcher = decoding.matcher
        assert matcher is not None
        new = _output_tokens(state)[decoding.consumed :]
        if new:
            matcher.consume_tokens(new)
            decoding.consumed += len(new)
        if matcher.is_error():
            decoding.mask = self._eos_mask  # cannot happen with a sound grammar: end the output
        else:
            decoding.mask = _mask_from_bits(matcher.compute_bitmask(), self._vocab_size)

    def __call__(
        self, input_ids: torch.Tensor, scores: torch.Tensor, logits_processor_args: torch.Tensor
    ) -> torch.Tensor:
        """After the forward pass: mask, then sample the rows that are not greedy."""
        sampled: list[int] = []
        for row, decoding in enumerate(self._rows):
            if decoding is None:
                continue
            if decoding.mask is not None:
                allowed = decoding.mask.to(scores.device, non_blocking=True)
                scores[row].masked_fill_(~allowed, float("-inf"))
            if decoding.temperature > 0:
                sampled.append(row)
        if sampled:
            self._sample(scores, sampled)
        return scores

    def _sample(self, scores: torch.Tensor, rows: list[int]) -> None:
        index = torch.tensor(rows, device=scores.device)
        decodings = [self._rows[r] for r in rows]
        temperature = torch.tensor([d.temperature for d in decodings if d], device=scores.device)
        top_p = torch.tensor([d.top_p for d in decodings if d], device=scores.device)
        logits = scores[index] / temperature.unsqueeze(-1)
        # Nucleus: keep the smallest prefix of tokens, by probability, whose mass reaches top_p.
        ordered, order = logits.sort(dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        drop = (probs.cumsum(dim=-1) - probs) >= top_p.unsqueeze(-1)
        drop[:, 0] = False  # the most likely token always stays, even for top_p 0
        logits.scatter_(-1, order, ordered.masked_fill(drop, float("-inf")))
        probs = logits.softmax(dim=-1)
        picks = torch.cat(
            [
                torch.multinomial(probs[i], 1, generator=d.generator if d else None)
                for i, d in enumerate(decodings)
            ]
        )
        chosen = torch.full_like(logits, float("-inf"))
        chosen.scatter_(-1, picks.unsqueeze(-1), 0.0)
        scores[index] = chosen
