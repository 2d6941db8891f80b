"""Errors of the memory layer. api/ maps them to HTTP (the status is noted on each).

UserError (core)
 └── InvalidMemoryInput              misuse of the memory API (400 unless noted)
      ├── EmptyContent               content is empty or only whitespace (422)
      ├── ContentTooLarge            content over the configured size (413)
      ├── EmbeddingDimensionMismatch a vector whose size is not the store's dimension
      ├── UnknownFilterField         a search/list filter names a field that does not exist
      └── BlockTooLarge              a core memory block value over its character limit (413)

ConfigError (core)
 └── EmbeddingModelChanged           the configured model is not the one the stored vectors
                                     came from (the store refuses to start)
"""

from __future__ import annotations

from core.errors import ConfigError, UserError


class InvalidMemoryInput(UserError):
    """Root of every memory error a caller can fix."""


class EmptyContent(InvalidMemoryInput):
    """A memory (or a query) with no text."""

    def __init__(self, param: str = "content") -> None:
        super().__init__(f"{param} must not be empty", param=param)


class ContentTooLarge(InvalidMemoryInput):
    """Content longer than `memory_max_content_chars`."""

    def __init__(self, size: int, limit: int, param: str = "content") -> None:
        super().__init__(
            f"{param} is {size} characters; the limit is {limit} (split it into several memories)",
            param=param,
        )
        self.size = size
        self.limit = limit


class EmbeddingDimensionMismatch(InvalidMemoryInput):
    """An embedding whose length differs from the store's (the model's) dimension."""

    def __init__(self, got: int, expected: int) -> None:
        super().__init__(
            f"embedding has {got} dimensions; this store holds {expected}-dimensional vectors "
            "(embed with the same model as the store, or leave the embedding out)",
            param="embedding",
        )
        self.got = got
        self.expected = expected


class UnknownFilterField(InvalidMemoryInput):
    """A filter on a field memory does not have: refused, never silently ignored."""

    def __init__(self, field: str, allowed: tuple[str, ...]) -> None:
        super().__init__(
            f"unknown filter field {field!r}; filter on one of {', '.join(allowed)} "
            "(or on metadata keys through 'metadata')",
            param=field,
        )
        self.field = field
        self.allowed = allowed


class BlockTooLarge(InvalidMemoryInput):
    """A block value longer than the block's character limit."""

    def __init__(self, label: str, size: int, limit: int) -> None:
        super().__init__(
            f"block {label!r} would hold {size} characters; its limit is {limit}",
            param="value",
        )
        self.label = label
        self.size = size
        self.limit = limit


REEMBED_COMMAND = "agentmill memory reembed"
"""The command that re-embeds every memory with the configured model."""


class EmbeddingModelChanged(ConfigError):
    """The stored vectors came from another model (or another dimension) than the embedder's:
    searching them with this model's query vectors would return noise, so memory refuses."""

    def __init__(
        self,
        stored: str | None,
        stored_dimension: int,
        configured: str | None,
        configured_dimension: int,
    ) -> None:
        def describe(model: str | None, dimension: int) -> str:
            return f"{model or 'an unnamed model'} ({dimension} dimensions)"

        super().__init__(
            f"the memories in the database were embedded with "
            f"{describe(stored, stored_dimension)} but the configured embedding model "
            f"(AGENTMILL_EMBEDDING_MODEL) is {describe(configured, configured_dimension)}: "
            f"stop the API and the workers, run `{REEMBED_COMMAND}` with the new setting "
            "(it re-embeds every memory), then start them again; or set "
            "AGENTMILL_EMBEDDING_MODEL back"
        )
        self.stored = stored
        self.stored_dimension = stored_dimension
        self.configured = configured
        self.configured_dimension = configured_dimension
