"""Constrained decoding shared by both engines and the server's checks: output constraints,
grammars, the JSON cursor, text streaming."""
