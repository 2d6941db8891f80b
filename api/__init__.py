"""The REST API (FastAPI) and the `agentmill` command line."""
