"""Per-request sampling and grammar masks inside transformers' continuous-batching loop.

The manager samples every row of a batch the same way (one global temperature, one RNG) and
knows nothing of grammars. `BatchSampler` takes the place of its logits-processor list: before
each forward pass it is shown the scheduled requests (it advances their grammar matchers and
computes the masks); after the forward pass it masks the logits and samples each request's row
with that request's temperature, top_p and seeded generator, leaving a single finite logit, so
the manager's greedy argmax picks exactly the sampled token. A constrained row's pick must also
keep room to close the output within its budget (`Guide.pick`); when no draw does, the row is
forced through the closing its guide reserved, one token per step. Greedy rows without a
grammar are left untouched.

This runs Python inside the step, so the engine turns off CUDA graphs and async batching.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessorList
from transformers.generation.continuous_batching import RequestState
from transformers.generation.continuous_batching.cb_logits_processors import (
    ContinuousBatchingLogitsProcessorList,
)
from transformers.generation.continuous_batching.requests import FutureRequestState

from inference.decoding.guide import Guide


@dataclass
class Decoding:
    """How one request picks its tokens; the sampler's per-request state."""

    temperature: float = 0.0
    top_p: float = 1.0
    generator: torch.Generator | None = None
    matcher: Guide | None = None  # the grammar and budget keeper of a constrained output
    consumed: int = 0  # output tokens already fed to the matcher
    budget_set: bool = False  # the guide knows the request's max_new_tokens
    mask: torch.Tensor | None = None  # allowed next tokens (bool, vocabulary-sized)
    prompt_tokens_evaluated: int = 0  # prompt tokens run through the model (not from cache)


def _output_tokens(state: RequestState) -> list[int]:
    # A request the manager soft-reset carries its earlier output inside its prompt.
    if state._true_initial_tokens:
        return state.initial_tokens[state._true_initial_tokens :] + state.generated_tokens
    return state.generated_tokens


def _nucleus(logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Probabilities after temperature and top-p (rows of `logits`)."""
    logits = logits / temperature.unsqueeze(-1)
    # Nucleus: keep the smallest prefix of tokens, by probability, whose mass reaches top_p.
    ordered, order = logits.sort(dim=-1, descending=True)
    probs = ordered.softmax(dim=-1)
    drop = (probs.cumsum(dim=-1) - probs) >= top_p.unsqueeze(-1)
    drop[:, 0] = False  # the most likely token always stays, even for top_p 0
    logits.scatter_(-1, order, ordered.masked_fill(drop, float("-inf")))
    return logits.softmax(dim=-1)


class BatchSampler(ContinuousBatchingLogitsProcessorList):
    """The continuous-batching logits step: grammar masks and per-request sampling."""

    def __init__(self, vocab_size: int, eos_ids: list[int]) -> None:
        super().__init__(LogitsProcessorList())
        self.do_processing = True
        self._vocab_size = vocab_size
        self._eos_ids = [i for i in eos_ids if i < vocab_size]
        self._eos_mask = torch.zeros(vocab_size, dtype=torch.bool)
        self._eos_mask[self._eos_ids] = True
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
        guide = decoding.matcher
        assert guide is not None
        if not decoding.budget_set:
            decoding.budget_set = True
            if state.max_new_tokens is not None:
                guide.set_budget(state.max_new_tokens)
        new = _output_tokens(state)[decoding.consumed :]
        for token in new:
            guide.accept(token)
        decoding.consumed += len(new)
        if guide.matcher.is_error():
            decoding.mask = self._eos_mask  # cannot happen with a sound grammar: end the output
        else:
            decoding.mask = torch.from_numpy(guide.allowed())

    def __call__(
        self, input_ids: torch.Tensor, scores: torch.Tensor, logits_processor_args: torch.Tensor
    ) -> torch.Tensor:
        """After the forward pass: mask, then pick constrained rows and sample the others."""
        sampled: list[int] = []
        for row, decoding in enumerate(self._rows):
            if decoding is None:
                continue
            if decoding.mask is not None:
                allowed = decoding.mask.to(scores.device, non_blocking=True)
                scores[row].masked_fill_(~allowed, float("-inf"))
            if decoding.matcher is not None:
                token = self._pick(scores[row], decoding, decoding.matcher)
                scores[row] = float("-inf")
                scores[row, token] = 0.0
            elif decoding.temperature > 0:
                sampled.append(row)
        if sampled:
            self._sample(scores, sampled)
        return scores

    def _pick(self, row: torch.Tensor, decoding: Decoding, guide: Guide) -> int:
        """A constrained row's token: one that keeps room to close, else the closing's next."""
        if guide.forcing:
            return guide.forcing[0]
        logits = row.float().unsqueeze(0).clone()
        bias = guide.bias()
        if bias is not None:
            logits[0, torch.from_numpy(bias[0]).to(logits.device)] += bias[1]

        def draw() -> int:
            if decoding.temperature <= 0:
                return int(logits[0].argmax())
            device = logits.device
            probs = _nucleus(
                logits.clone(),
                torch.tensor([decoding.temperature], device=device),
                torch.tensor([decoding.top_p], device=device),
            )
            return int(torch.multinomial(probs[0], 1, generator=decoding.generator))

        def forbid(token: int) -> None:
            logits[0, token] = float("-inf")

        token = guide.pick(draw, forbid)
        if token is not None:
            return token
        closing = guide.close()
        return closing[0] if closing else self._eos_ids[0]

    def _sample(self, scores: torch.Tensor, rows: list[int]) -> None:
        index = torch.tensor(rows, device=scores.device)
        decodings = [self._rows[r] for r in rows]
        temperature = torch.tensor([d.temperature for d in decodings if d], device=scores.device)
        top_p = torch.tensor([d.top_p for d in decodings if d], device=scores.device)
        probs = _nucleus(scores[index], temperature, top_p)
        picks = torch.cat(
            [
                torch.multinomial(probs[i], 1, generator=d.generator if d else None)
                for i, d in enumerate(decodings)
            ]
        )
        chosen = torch.full_like(probs, float("-inf"))
        chosen.scatter_(-1, picks.unsqueeze(-1), 0.0)
        scores[index] = chosen
