"""Long-term memory: embedder, pgvector store, hybrid retrieval, core memory blocks."""
