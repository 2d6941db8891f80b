"""Long-term memory: embedder, pgvector store, hybrid retrieval, core memory blocks.

Agents and the API use `MemoryStore` (memory.service); see docs/memory.md."""
