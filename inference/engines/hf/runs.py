"""Submissions to transformers' continuous-batching manager, and its outputs routed back.

The manager's thread puts every request's outputs on one shared queue (no handler is
registered, so it never touches an event loop). A router thread reads that queue and hands
each output to the `Run` that waits for it, on that run's own event loop; outputs of runs that
are gone (cancelled, loop closed) are dropped there, so nothing accumulates.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading

from transformers.generation.continuous_batching import ContinuousBatchingManager
from transformers.generation.continuous_batching.requests import GenerationOutput

from inference.engines.hf.sampling import BatchSampler, Decoding
from inference.errors import EngineFailed


class Run:
    """One request in the manager; its outputs arrive on the submitting event loop."""

    def __init__(self, router: RunRouter, request_id: str, decoding: Decoding) -> None:
        self.id = request_id
        self.decoding = decoding
        self.tokens: list[int] = []
        self.finished = False
        self._router = router
        self._loop = asyncio.get_running_loop()
        self._outputs: asyncio.Queue[GenerationOutput] = asyncio.Queue()
        self._seen = 0

    def deliver(self, output: GenerationOutput) -> None:
        """From the router thread: queue `output` for the reader."""
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is reading any more
            self._loop.call_soon_threadsafe(self._outputs.put_nowait, output)

    async def next_tokens(self) -> list[int]:
        """The token ids generated since the last call (waits for the next step)."""
        output = await self._outputs.get()
        if output.error is not None:
            self.finished = True
            raise EngineFailed(f"generation failed: {output.error}")
        self.finished = output.is_finished()
        new = output.generated_tokens[self._seen :]
        self._seen = len(output.generated_tokens)
        self.tokens.extend(new)
        return new

    def close(self) -> None:
        """Cancel in the manager unless finished (its KV pages are freed on the next step)."""
        self._router.forget(self)


class RunRouter:
    """Submits runs to the manager and routes the manager's outputs to them."""

    def __init__(self, manager: ContinuousBatchingManager, sampler: BatchSampler) -> None:
        self._manager = manager
        self._sampler = sampler
        self._runs: dict[str, Run] = {}
        self._ids = itertools.count()
        self.prompt_tokens_sent = 0
        self._thread = threading.Thread(target=self._route, name="hf-outputs", daemon=True)
        self._thread.start()

    def submit(
        self, prompt: list[int], max_new: int, decoding: Decoding, eos_ids: list[int]
    ) -> Run:
        """Start generating for `prompt`; raise `EngineFailed` if the manager is stopped."""
        run = Run(self, f"am-{next(self._ids)}", decoding)
        self._sampler.add(run.id, decoding)
        self._runs[run.id] = run
        submitted = self._manager.add_request(
            prompt, request_id=run.id, max_new_tokens=max_new, streaming=True, eos_token_id=eos_ids
        )
        if submitted is None:
            run.finished = True
            self.forget(run)
            raise EngineFailed("the transformers engine is stopped")
        self.prompt_tokens_sent += len(prompt)
        return run

    def forget(self, run: Run) -> None:
        """Drop `run`, cancelling it in the manager if it is still generating."""
        if not run.finished:
            self._manager.cancel_request(run.id)
        self._sampler.remove(run.id)
        self._runs.pop(run.id, None)

    def stop(self) -> None:
        """End the router thread (after the manager has stopped producing)."""
        self._manager.output_router.output_queue.put(None)
        self._thread.join(timeout=10)

    def _route(self) -> None:
        outputs = self._manager.output_router.output_queue
        while (output := outputs.get()) is not None:
            run = self._runs.get(output.request_id)
            if run is not None:
                run.deliver(output)
