"""The `agentmill` command line: the runtime and its supervisor, admin commands, and the chat and
batch clients."""
