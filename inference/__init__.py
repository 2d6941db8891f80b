"""Inference: the OpenAI-compatible server, its engines, and the litellm router client."""
