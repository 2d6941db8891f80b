"""Token counts for the router's aliases, behind a small LRU.

`local`: the inference server's `POST /tokenize` (vLLM's route; the model's own tokenizer and
chat template), every prompt not in the cache in one request of its batch form. Other aliases:
litellm's counter (the model's tokenizer where litellm knows it, else a GPT one), off the event
loop. A count depends on nothing but the alias and the messages, so counts are kept: the
history an agent re-sends at every step and in every run of a session is counted once per
worker (each /tokenize round trip costs ~3 ms on a 2-core machine, most of it HTTP).

Failures come out raw (httpx's errors, `httpx.HTTPStatusError`, `UnusableAnswer`):
`router.model_error` turns them into ours.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from typing import Any

import httpx
import litellm

Prompt = list[dict[str, Any]]

CACHE_SIZE = 4096
"""Counts kept (a 16-byte digest and an int each, whatever the messages' size)."""


class UnusableAnswer(Exception):
    """/tokenize answered 200 with something that is not its answer."""


class PromptCounter:
    """Counts prompts for the aliases of one router (`litellm_models`: alias -> model)."""

    def __init__(
        self,
        *,
        local_alias: str,
        local_model_id: str,
        tokenize_url: str,
        litellm_models: dict[str, str],
        timeout_s: float,
        retries: int,
    ) -> None:
        self._local_alias = local_alias
        self._local_model_id = local_model_id
        self._tokenize_url = tokenize_url
        self._litellm_models = litellm_models
        self._timeout_s = timeout_s
        self._retries = retries
        self._cache: OrderedDict[bytes, int] = OrderedDict()
        self._lock = threading.Lock()  # one loop in a worker, but a client may serve several
        self._http: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    async def count(self, alias: str, prompts: Sequence[Prompt]) -> list[int]:
        """Tokens of each prompt for `alias` (a configured one); one fetch for all misses."""
        keys = [_key(alias, prompt) for prompt in prompts]
        known = self._cached(keys)
        missing = {
            key: prompt for key, prompt in zip(keys, prompts, strict=True) if key not in known
        }
        if missing:
            fetched = await self._fetch(alias, list(missing.values()))
            known.update(zip(missing, fetched, strict=True))
            self._keep(known)
        return [known[key] for key in keys]

    def _cached(self, keys: list[bytes]) -> dict[bytes, int]:
        with self._lock:
            found = {key: self._cache[key] for key in keys if key in self._cache}
            for key in found:
                self._cache.move_to_end(key)
        return found

    def _keep(self, counts: dict[bytes, int]) -> None:
        with self._lock:
            self._cache.update(counts)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)

    async def _fetch(self, alias: str, prompts: list[Prompt]) -> list[int]:
        if alias == self._local_alias:
            return await self._tokenize(prompts)
        return await asyncio.to_thread(_litellm_counts, self._litellm_models[alias], prompts)

    async def _tokenize(self, prompts: list[Prompt]) -> list[int]:
        body = {"model": self._local_model_id, "items": [{"messages": m} for m in prompts]}
        response = await self._client().post(self._tokenize_url, json=body)
        response.raise_for_status()
        try:
            counts = [int(item["count"]) for item in response.json()["items"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise UnusableAnswer(f"/tokenize answered in an unknown shape: {exc!r}") from None
        if len(counts) != len(prompts):
            raise UnusableAnswer(f"/tokenize answered {len(counts)} counts for {len(prompts)}")
        return counts

    def _client(self) -> httpx.AsyncClient:
        """This event loop's client (an httpx client is bound to the loop it first ran on).
        No keep-alive: a pooled connection would outlive a loop that ends (`asyncio.run`)."""
        loop = asyncio.get_running_loop()
        client = self._http.get(loop)
        if client is None:
            transport = httpx.AsyncHTTPTransport(
                retries=self._retries,  # connection failures only
                verify=_ssl_context(),
                limits=httpx.Limits(max_keepalive_connections=0),
            )
            client = httpx.AsyncClient(transport=transport, timeout=self._timeout_s)
            self._http[loop] = client
        return client


def _key(alias: str, prompt: Prompt) -> bytes:
    text = json.dumps([alias, prompt], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


@cache
def _ssl_context() -> ssl.SSLContext:
    # Built once: httpx builds one per client otherwise (~200 ms measured under load).
    return ssl.create_default_context()


def _litellm_counts(model: str, prompts: list[Prompt]) -> list[int]:
    return [int(litellm.token_counter(model=model, messages=_plain(m))) for m in prompts]


def _plain(messages: Prompt) -> list[dict[str, str]]:
    """Role and text only: tool-call fields confuse some of litellm's counters, and their
    text is what costs."""
    plain = []
    for message in messages:
        parts = [message.get("content") or ""]
        if message.get("tool_calls"):
            parts.append(json.dumps(message["tool_calls"]))
        plain.append({"role": message["role"], "content": "\n".join(parts)})
    return plain
