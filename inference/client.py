"""The one way agents reach a model: a litellm Router built from settings.

Aliases: `local` is this installation's inference server (cost 0); every entry of
`AGENTMILL_MODELS` adds an alias for any litellm provider string, with its key, fallbacks,
retries and timeout. Every call returns its usage (tokens and cost) for the caller to record.
"""

from __future__ import annotations

import logging
from typing import Any

import litellm
from litellm.router import Router

from core.config import Settings
from inference.errors import EngineFailed, UnknownModel
from inference.model_client import ChatRequest, ChatResult, DeltaSink, ToolCallRequest, Usage

log = logging.getLogger(__name__)

LOCAL_ALIAS = "local"


def _model_list(settings: Settings, local_model_id: str) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = [
        {
            "model_name": LOCAL_ALIAS,
            "litellm_params": {
                "model": f"openai/{local_model_id}",
                "api_base": settings.local_inference_url,
                "api_key": "local",
                "timeout": 300.0,
                "max_retries": 2,
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


class RouterClient:
    """`ModelClient` over a litellm Router."""

    def __init__(self, settings: Settings, local_model_id: str) -> None:
        fallbacks = [
            {alias: list(route.fallbacks)}
            for alias, route in settings.models.items()
            if route.fallbacks
        ]
        self.aliases = [LOCAL_ALIAS, *settings.models]
        self._router = Router(
            model_list=_model_list(settings, local_model_id),
            fallbacks=fallbacks,
            num_retries=2,
            retry_after=0,
        )

    async def complete(self, request: ChatRequest, on_delta: DeltaSink | None = None) -> ChatResult:
        """Call the alias; retries and fallbacks are the router's. With `on_delta` the answer
        is streamed and its content passed on piece by piece; the result is the same."""
        if request.model not in self.aliases:
            raise UnknownModel(request.model, self.aliases)
        kwargs: dict[str, Any] = {"model": request.model, "messages": request.messages}
        for name in (
            "tools",
            "tool_choice",
            "temperature",
            "max_tokens",
            "response_format",
            "seed",
        ):
            value = getattr(request, name)
            if value is not None:
                kwargs[name] = value
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
        if built is None:
            raise EngineFailed("the model's stream ended without a single chunk")
        return _result(built, request.model)


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
