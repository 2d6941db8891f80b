"""HTTP pieces every FastAPI app of agentmill shares: the error envelope and body limits."""
