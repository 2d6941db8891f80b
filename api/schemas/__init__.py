"""Pydantic request and response bodies of the REST API, one module per entity.

These are the API's edges only: the agents layer takes and returns plain dataclasses
(agents/records.py), and each `*Public.of(record)` converts one for the wire."""
