"""The SDK's public surface."""

from __future__ import annotations

import types

import agentmill


def test_all_names_every_public_object_once() -> None:
    assert len(set(agentmill.__all__)) == len(agentmill.__all__)
    assert sorted(agentmill.__all__) == sorted(
        name
        for name, value in vars(agentmill).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in ("annotations",)
    )
    for name in agentmill.__all__:
        assert getattr(agentmill, name).__doc__, name


def test_the_surface_is_the_documented_one() -> None:
    assert set(agentmill.__all__) == {
        "APIConnectionError",
        "APIError",
        "APITimeoutError",
        "Agent",
        "AgentmillAPIError",
        "AgentmillError",
        "ApprovalParams",
        "ApprovalPolicy",
        "AsyncBatchResultStream",
        "AsyncClient",
        "AsyncEventStream",
        "AuthenticationError",
        "BadRequestError",
        "Batch",
        "BatchCounts",
        "BatchItemParams",
        "BatchResult",
        "BatchResultStream",
        "BatchTimeoutError",
        "Block",
        "BlockVersion",
        "Client",
        "ConflictError",
        "Decision",
        "Erased",
        "ErasedCounts",
        "EventStream",
        "Me",
        "Memory",
        "MemoryFilters",
        "MemoryHit",
        "MemoryParams",
        "MemoryPolicy",
        "MemoryWritten",
        "Message",
        "MessageDeltaEvent",
        "MessageEvent",
        "NotFoundError",
        "Page",
        "PayloadTooLargeError",
        "PendingCall",
        "RateLimitError",
        "RequestSecret",
        "RequiredAction",
        "McpServer",
        "McpServerParams",
        "McpServerUse",
        "McpTool",
        "RetryPolicy",
        "Run",
        "RunEvent",
        "RunFilter",
        "RunFinishedEvent",
        "RunQueuedEvent",
        "RunReleasedEvent",
        "RunRequiresActionEvent",
        "RunStartedEvent",
        "RunTimeoutError",
        "RunWaitingEvent",
        "Schedule",
        "ScheduleFire",
        "Session",
        "Step",
        "StepStartedEvent",
        "ToolApprovalEvent",
        "ToolCall",
        "ToolCallEvent",
        "ToolResultEvent",
        "ToolSourceErrorEvent",
        "Webhook",
        "WebhookAttempt",
        "WebhookDelivery",
        "WebhookVerificationError",
        "verify_webhook",
        "UnknownEvent",
        "UnprocessableEntityError",
        "Usage",
    }


def test_every_error_derives_from_the_root() -> None:
    for name in agentmill.__all__:
        obj = getattr(agentmill, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, agentmill.AgentmillError), name
