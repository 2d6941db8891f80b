"""The OpenAI-compatible inference server: app, routes, metrics, start-up check."""
