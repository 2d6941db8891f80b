"""Python SDK for agentmill's REST API (httpx + pydantic only; imports nothing of the server)."""

from agentmill.batch_models import Batch, BatchCounts, BatchResult
from agentmill.batch_results import AsyncBatchResultStream, BatchResultStream
from agentmill.client import AsyncClient, Client
from agentmill.erasure_models import Erased, ErasedCounts
from agentmill.errors import (
    AgentmillAPIError,
    AgentmillError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchTimeoutError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    RunTimeoutError,
    UnprocessableEntityError,
)
from agentmill.events import (
    MessageDeltaEvent,
    MessageEvent,
    RunEvent,
    RunFinishedEvent,
    RunQueuedEvent,
    RunStartedEvent,
    StepStartedEvent,
    ToolCallEvent,
    ToolResultEvent,
    UnknownEvent,
)
from agentmill.memory_models import Block, BlockVersion, Memory, MemoryHit, MemoryWritten
from agentmill.models import (
    Agent,
    Me,
    MemoryPolicy,
    Message,
    Page,
    Run,
    Session,
    Step,
    ToolCall,
    Usage,
)
from agentmill.resources.agents import MemoryParams
from agentmill.resources.batches import BatchItemParams
from agentmill.resources.memories import MemoryFilters
from agentmill.retry import RetryPolicy
from agentmill.stream import AsyncEventStream, EventStream

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Agent",
    "AgentmillAPIError",
    "AgentmillError",
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
    "RateLimitError",
    "RetryPolicy",
    "Run",
    "RunEvent",
    "RunFinishedEvent",
    "RunQueuedEvent",
    "RunStartedEvent",
    "RunTimeoutError",
    "Session",
    "Step",
    "StepStartedEvent",
    "ToolCall",
    "ToolCallEvent",
    "ToolResultEvent",
    "UnknownEvent",
    "UnprocessableEntityError",
    "Usage",
]
