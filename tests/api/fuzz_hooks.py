"""Schemathesis hooks of the fuzz run (tests/api/test_fuzz.py), loaded by its CLI from
SCHEMATHESIS_HOOKS: ids drawn from live entities as well as random ones, and the requests that
would follow a run or a batch forever kept short.

The CLI runs in a child process; the test passes the served API's URL and a key of its tenant
in AGENTMILL_FUZZ_URL and AGENTMILL_FUZZ_KEY. No worker runs: a run stays queued and a batch
running unless cancelled."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import jsonschema
import requests
import schemathesis
from hypothesis import strategies as st

BASE_URL = os.environ.get("AGENTMILL_FUZZ_URL", "")
KEY = os.environ.get("AGENTMILL_FUZZ_KEY", "")
SEED_USER = "fuzz-user"
SEED_LABEL = "persona"
NDJSON = "application/x-ndjson"
SHORT_WAIT_S = 0.05
"""The longest `wait` of POST /messages (the run never ends, so it always waits this long)."""

_SEEDS: dict[str, dict[str, str]] = {}


def _call(method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(
        method, BASE_URL + path, headers={"Authorization": f"Bearer {KEY}"}, timeout=30, **kwargs
    )
    response.raise_for_status()
    return response.json()


def _seed() -> dict[str, str]:
    """One of each entity, through the API: an agent with a session, an ended run, an ended
    batch, a memory and a core block of the seed user."""
    agent = _call("POST", "/v1/agents", json={"name": f"fuzz-{uuid.uuid4().hex[:8]}"})["id"]
    session = _call("POST", f"/v1/agents/{agent}/sessions", json={"user_id": SEED_USER})["id"]
    run = _call("POST", f"/v1/sessions/{session}/messages", json={"content": "hi"})["id"]
    _call("POST", f"/v1/runs/{run}/cancel")  # ended: its event stream closes after the replay
    batch = _call("POST", "/v1/batches", json={"agent_id": agent, "items": [{"input": "x"}]})
    _call("POST", f"/v1/batches/{batch['id']}/cancel")  # ended: `results?wait=true` returns
    memory = _call(
        "POST",
        f"/v1/agents/{agent}/memories",
        json={"content": "likes tea", "user_id": SEED_USER, "session_id": session},
    )["id"]
    _call("PUT", f"/v1/agents/{agent}/blocks/{SEED_LABEL}", json={"value": "calm"})
    return {
        "agent_id": agent,
        "session_id": session,
        "run_id": run,
        "batch_id": batch["id"],
        "memory_id": memory,
        "label": SEED_LABEL,
        "user_id": SEED_USER,
    }


def seeds_for(context: schemathesis.HookContext) -> dict[str, str]:
    """The entities of the operation being tested, made on its first use: each operation has
    its own, so one that deletes its agent leaves the next ones theirs."""
    label = context.operation.label if context.operation is not None else ""
    if label not in _SEEDS:
        _SEEDS[label] = _seed()
    return _SEEDS[label]


def _either(value: Any, seed: str) -> st.SearchStrategy[Any]:
    return st.sampled_from([value, seed])


@schemathesis.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Each id, label or user in a path: the generated one or the seed's."""
    if not path_parameters:
        return st.just(path_parameters)
    seeds = seeds_for(context)
    return st.fixed_dictionaries(
        {
            name: _either(value, seeds[name]) if name in seeds else st.just(value)
            for name, value in path_parameters.items()
        }
    )


@schemathesis.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """The ids a body names (a batch's agent, a memory's session): generated or the seed's."""
    if not isinstance(body, dict):
        return st.just(body)
    seeds = seeds_for(context)
    named = [name for name in ("agent_id", "session_id") if name in body]
    if not named:
        return st.just(body)
    return st.fixed_dictionaries(
        {
            name: _either(value, seeds[name]) if name in named else st.just(value)
            for name, value in body.items()
        }
    )


@schemathesis.hook
def flatmap_query(
    context: schemathesis.HookContext, query: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """The agent of a JSONL batch upload and the session filter of a memory search or list:
    generated or the seed's."""
    if not query or not ({"agent_id", "session_id"} & set(query)):
        return st.just(query)
    seeds = seeds_for(context)
    return st.fixed_dictionaries(
        {
            name: _either(value, seeds[name])
            if name in ("agent_id", "session_id")
            else st.just(value)
            for name, value in query.items()
        }
    )


def _end(kind: str, ident: Any) -> None:
    """Cancel a run or a batch: with no worker, it ends at once (an unknown one is left)."""
    try:
        uuid.UUID(str(ident))
    except ValueError:
        return
    requests.post(
        f"{BASE_URL}/v1/{kind}/{ident}/cancel",
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    )


@schemathesis.hook
def before_call(
    context: schemathesis.HookContext, case: schemathesis.Case[Any], kwargs: dict[str, Any]
) -> None:
    """End or cut short what would never end without a worker (test_events_stream.py,
    test_sessions_routes.py and test_batches_routes.py cover these with runs that do end):
    - GET /events and GET /results: the run or batch is cancelled first, so that the stream
      (`wait=true` for results) replays and ends, as for a finished one;
    - POST /messages: `stream` is dropped (its answer is the stream of GET /events) and `wait`
      is cut to SHORT_WAIT_S."""
    label = case.operation.label
    if label == "GET /v1/runs/{run_id}/events":
        _end("runs", (case.path_parameters or {}).get("run_id"))
    elif label == "GET /v1/batches/{batch_id}/results":
        _end("batches", (case.path_parameters or {}).get("batch_id"))
    elif label == "POST /v1/sessions/{session_id}/messages" and isinstance(case.body, dict):
        body = case.body
        if body.get("stream") is True and body.get("wait") is not True:
            body["stream"] = False
        timeout = body.get("timeout_s", SHORT_WAIT_S + 1)  # absent: 60 s
        if body.get("wait") is True and isinstance(timeout, int | float) and timeout > SHORT_WAIT_S:
            body["timeout_s"] = SHORT_WAIT_S


@schemathesis.check
def ndjson_lines_conform(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """Each line of an `application/x-ndjson` answer (GET /results) matches the schema that the
    document gives for one line: schemathesis validates whole bodies, and skips this one."""
    kind = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    if kind != NDJSON:
        return None
    documented = case.operation.definition.raw["responses"][str(response.status_code)]
    validator = jsonschema.Draft202012Validator(documented["content"][NDJSON]["schema"])
    for number, line in enumerate(response.text.splitlines(), start=1):
        if line.strip():  # empty lines are keep-alives
            errors = [error.message for error in validator.iter_errors(json.loads(line))]
            if errors:
                raise AssertionError(f"line {number} does not match the schema: {errors[0]}")
    return True
