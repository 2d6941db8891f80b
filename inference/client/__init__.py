"""The side of inference that agents use: the litellm router, the model-client protocol, and the
scripted fake."""
