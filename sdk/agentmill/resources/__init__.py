"""Resources mirroring the REST API, each a sync class and an async twin on one module:
agents, sessions, runs, memories, blocks, batches."""
