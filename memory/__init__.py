"""Long-term memory: embedder, pgvector store, hybrid retrieval, core memory blocks.

Agents and the API use `MemoryStore` (memory.store); see docs/memory.md."""
