"""The one way agents reach a model: a litellm Router built from settings.

Aliases: `local` is this installation's inference server (cost 0); every entry of
`AGENTMILL_MODELS` adds an alias for any litellm provider string, with its key, fallbacks,
retries and timeout. Every call returns its usage (tokens and cost) for the caller to record.

Token counts (inference/client/counting.py): `local` asks the server's /tokenize (vLLM's route;
the model's own tokenizer and chat template), every prompt not counted before in one request;
other aliases use litellm's counter (the model's tokenizer where litellm knows it, else a GPT
one).

Whatever litellm, openai or httpx raise leaves `complete` and `count_tokens` as our own
`ModelUnavailable` (worth retrying later) or `ModelRejected` (not), with a fixed message and the
original chained as `__cause__`: callers never branch on provider types or show provider text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import litellm
import openai
from litellm.exceptions import ContentPolicyViolationError, ContextWindowExceededError
from litellm.router import Router
from litellm.types.router import RouterRateLimitError, RouterRateLimitErrorBasic
from opentelemetry import propagate

from core.config import Settings
from inference.client.counting import PromptCounter, UnusableAnswer
from inference.client.model_client import (
    ChatRequest,
    ChatResult,
    DeltaSink,
    ModelCallError,
    ModelRejected,
    ModelUnavailable,
    ToolCallRequest,
    Usage,
)
from inference.errors import UnknownModel

log = logging.getLogger(__name__)

LOCAL_ALIAS = "local"
LOCAL_TIMEOUT_S = 300.0
LOCAL_MAX_RETRIES = 2


def _model_list(settings: Settings, local_model_id: str) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = [
        {
            "model_name": LOCAL_ALIAS,
            "litellm_params": {
                "model": f"openai/{local_model_id}",
                "api_base": settings.local_inference_url,
                "api_key": "local",
                "timeout": LOCAL_TIMEOUT_S,
                "max_retries": LOCAL_MAX_RETRIES,
            },
            "model_info": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0},
        }
    ]
    for alias, route in settings.models.items():
        params: dict[str, Any] = {
            "model": route.model,
            "timeout": route.timeout_s,
            "max_retries": route.max_retries,
        }
        if route.api_base:
            params["api_base"] = route.api_base
        if route.api_key is not None:
            params["api_key"] = route.api_key.get_secret_value()
        models.append({"model_name": alias, "litellm_params": params})
    return models


def _switch_on_callbacks(names: tuple[str, ...]) -> None:
    """litellm's own observability callbacks (`langfuse`, `langsmith`, `otel`...), each
    configured by its own environment variables; added once per process."""
    for name in names:
        for hooks in (litellm.success_callback, litellm.failure_callback):
            if name not in hooks:
                hooks.append(name)


class RouterClient:
    """`ModelClient` over a litellm Router."""

    def __init__(self, settings: Settings, local_model_id: str) -> None:
        fallbacks = [
            {alias: list(route.fallbacks)}
            for alias, route in settings.models.items()
            if route.fallbacks
        ]
        self.aliases = [LOCAL_ALIAS, *settings.models]
        _switch_on_callbacks(settings.litellm_callbacks)
        self._counter = PromptCounter(
            local_alias=LOCAL_ALIAS,
            local_model_id=local_model_id,
            tokenize_url=_server_root(settings.local_inference_url) + "/tokenize",
            litellm_models={alias: route.model for alias, route in settings.models.items()},
            timeout_s=LOCAL_TIMEOUT_S,
            retries=LOCAL_MAX_RETRIES,
        )
        self._router = Router(
            model_list=_model_list(settings, local_model_id),
            fallbacks=fallbacks,
            num_retries=2,
            retry_after=0,
        )

    async def complete(self, request: ChatRequest, on_delta: DeltaSink | None = None) -> ChatResult:
        """Call the alias; retries and fallbacks are the router's. With `on_delta` the answer
        is streamed and its content passed on piece by piece; the result is the same.

        Raises UnknownModel for an alias not configured here, else ModelUnavailable or
        ModelRejected (see `model_error`)."""
        if request.model not in self.aliases:
            raise UnknownModel(request.model, self.aliases)
        try:
            return await self._complete(request, on_delta)
        except Exception as exc:
            translated = model_error(exc)
            if translated is None:
                raise
            raise translated from exc

    async def count_tokens(self, model: str, prompts: Sequence[list[dict[str, Any]]]) -> list[int]:
        """Tokens of each prompt for the alias (see `ModelClient.count_tokens`): for `local` one
        /tokenize request, for the others litellm's counter; counts already known are not
        fetched again (inference/client/counting.py).

        Raises UnknownModel, or ModelUnavailable / ModelRejected as `complete` does (a
        /tokenize that cannot be reached is an outage like any other)."""
        if model not in self.aliases:
            raise UnknownModel(model, self.aliases)
        if not prompts:
            return []
        try:
            return await self._counter.count(model, prompts)
        except Exception as exc:
            translated = model_error(exc)
            if translated is None:
                raise
            raise translated from exc

    async def _complete(self, request: ChatRequest, on_delta: DeltaSink | None) -> ChatResult:
        kwargs: dict[str, Any] = {"model": request.model, "messages": request.messages}
        for name in (
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "temperature",
            "max_tokens",
            "response_format",
            "seed",
        ):
            value = getattr(request, name)
            if value is not None:
                kwargs[name] = value
        # The current trace context (W3C traceparent), so a traced inference server continues
        # this call's trace whatever HTTP client litellm uses; empty with tracing off.
        trace_headers: dict[str, str] = {}
        propagate.inject(trace_headers)
        if trace_headers:
            kwargs["extra_headers"] = trace_headers
        if on_delta is None:
            response = await self._router.acompletion(**kwargs)
            return _result(response, request.model)
        stream = await self._router.acompletion(
            **kwargs, stream=True, stream_options={"include_usage": True}
        )
        chunks = []
        async for chunk in stream:
            chunks.append(chunk)
            for choice in chunk.choices:
                if choice.delta.content:
                    on_delta(choice.delta.content)
        built = litellm.stream_chunk_builder(chunks, messages=request.messages)
        if built is None:  # the server went away before it sent anything
            raise ModelUnavailable("server_error")
        return _result(built, request.model)


def _server_root(base_url: str) -> str:
    """The server's root URL from its OpenAI base (…/v1): /tokenize lives at the root."""
    return base_url.rstrip("/").removesuffix("/v1")


_TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})


def _status_error(status: int) -> ModelCallError | None:
    """Our error for a failed response's HTTP status, whatever raised it."""
    if status in (401, 403):
        return ModelRejected("authentication", status=status)
    if status == 404:
        return ModelRejected("not_found", status=status)
    if status == 429:
        return ModelUnavailable("rate_limited", status=status)
    if status >= 500 or status in _TRANSIENT_STATUSES:
        return ModelUnavailable("server_error", status=status)
    if 400 <= status < 500:
        return ModelRejected("bad_request", status=status)
    return None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those it was raised from or during, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def model_error(exc: BaseException) -> ModelCallError | None:
    """Our error for what a provider call raised, or None when it is not a provider failure
    (a bug of ours, which should surface as one). Order matters: litellm's Timeout is an
    APIConnectionError, ContextWindowExceededError a BadRequestError."""
    if isinstance(exc, ModelCallError):
        return exc
    if isinstance(exc, httpx.HTTPStatusError):  # a call of ours, not litellm's (/tokenize)
        code = exc.response.status_code
        return _status_error(code) or ModelUnavailable("server_error", status=code)
    if isinstance(exc, UnusableAnswer):
        return ModelUnavailable("server_error")
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    if isinstance(exc, ContextWindowExceededError):
        return ModelRejected("context_window", status=status)
    if isinstance(exc, ContentPolicyViolationError):
        return ModelRejected("content_policy", status=status)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ModelRejected("authentication", status=status)
    if isinstance(exc, openai.NotFoundError):
        return ModelRejected("not_found", status=status)
    if isinstance(exc, openai.RateLimitError | RouterRateLimitError | RouterRateLimitErrorBasic):
        # The router's own "no deployments available" means every deployment is cooling down.
        return ModelUnavailable("rate_limited", status=status)
    chain = list(_causes(exc))  # litellm reports a refused connection as a 500 over it
    if any(
        isinstance(e, openai.APITimeoutError | httpx.TimeoutException | TimeoutError) for e in chain
    ):
        return ModelUnavailable("timeout", status=status)
    if any(
        isinstance(e, openai.APIConnectionError | httpx.TransportError | ConnectionError)
        for e in chain
    ):
        return ModelUnavailable("unreachable", status=status)
    if status is not None and (error := _status_error(status)) is not None:
        return error
    if isinstance(exc, openai.APIError):  # a response we could not use, with no status
        return ModelUnavailable("server_error")
    return None


def _cost(response: Any, alias: str) -> float:
    if alias == LOCAL_ALIAS:
        return 0.0
    try:
        return float(litellm.completion_cost(completion_response=response))
    except Exception:  # litellm raises for models without a price entry
        log.debug("no price known for %s; cost recorded as 0", alias)
        return 0.0


def _result(response: Any, alias: str) -> ChatResult:
    choice = response.choices[0]
    message = choice.message
    calls = [
        ToolCallRequest(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
        for c in (message.tool_calls or [])
    ]
    usage = response.usage
    details = getattr(usage, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
    return ChatResult(
        content=message.content,
        tool_calls=calls,
        finish_reason=choice.finish_reason or "stop",
        model=alias,
        usage=Usage(
            prompt_tokens=int(usage.prompt_tokens or 0),
            completion_tokens=int(usage.completion_tokens or 0),
            cached_prompt_tokens=cached,
            cost_usd=_cost(response, alias),
        ),
    )
