"""Inference: the client agents use (`client/`: litellm router, model-client protocol, scripted
fake), the OpenAI-compatible server (`server/`), its engines (`engines/llama`, `engines/hf`),
the constrained decoding they share (`decoding/`), the OpenAI wire format (`wire`) and the real
text embedder (`embedder`)."""
