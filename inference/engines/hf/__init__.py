"""The transformers engine (continuous batching, GPUs)."""
