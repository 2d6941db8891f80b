"""The REST API (FastAPI): routes, schemas, auth, limits and streaming. The `agentmill` command
line is the top-level `cli` package."""
