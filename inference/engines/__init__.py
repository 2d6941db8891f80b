"""The engines behind the server: the interface, llama.cpp and transformers."""
