"""client.batches against scripted answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import agentmill
import httpx
import pytest
from agentmill import Batch, BatchResult

from tests.sdk.fakes import (
    AGENT_ID,
    BATCH_ID,
    Server,
    answer,
    async_client,
    batch_body,
    client,
    dropping,
    error_body,
    jsonl_stream,
    result_line,
)

RESULTS = f"/v1/batches/{BATCH_ID}/results"


def test_create_sends_the_items_and_options_and_is_retried_with_its_key() -> None:
    server = Server([answer(201, batch_body())])
    batch = client(server).batches.create(
        AGENT_ID,
        ["first", {"input": "second", "user_id": "ann", "metadata": {"n": 2}}],
        concurrency=2,
        metadata={"job": "x"},
    )
    assert isinstance(batch, Batch)
    assert not batch.finished
    assert json.loads(server.requests[0].content) == {
        "agent_id": str(AGENT_ID),
        "items": [{"input": "first"}, {"input": "second", "user_id": "ann", "metadata": {"n": 2}}],
        "concurrency": 2,
        "metadata": {"job": "x"},
    }

    server = Server(
        [answer(502, error_body("http_error", "bad gateway")), answer(201, batch_body())]
    )
    assert isinstance(client(server).batches.create(AGENT_ID, ["x"]), Batch)
    first, retry = server.requests
    assert first.headers["idempotency-key"] == retry.headers["idempotency-key"]


def test_upload_sends_jsonl_with_the_options_as_query_parameters(tmp_path: Path) -> None:
    lines = b'{"input": "a"}\n{"input": "b"}\n'
    path = tmp_path / "items.jsonl"
    path.write_bytes(lines)
    server = Server([answer(201, batch_body()), answer(201, batch_body())])
    batches = client(server).batches
    batches.upload(AGENT_ID, lines, concurrency=3, max_attempts=1)
    batches.upload(AGENT_ID, path)
    first, second = server.requests
    assert first.headers["content-type"] == "application/x-ndjson"
    assert first.content == lines
    assert dict(first.url.params) == {
        "agent_id": str(AGENT_ID),
        "concurrency": "3",
        "max_attempts": "1",
    }
    assert second.content == lines
    assert dict(second.url.params) == {"agent_id": str(AGENT_ID)}


def test_upload_reports_the_bad_line_as_the_server_names_it() -> None:
    refused = error_body("validation_error", "line 2: not valid JSON (Expecting value)", "line 2")
    server = Server([answer(422, refused)])
    with pytest.raises(agentmill.UnprocessableEntityError) as raised:
        client(server).batches.upload(AGENT_ID, b'{"input": "a"}\nnope\n')
    assert raised.value.param == "line 2"


def test_wait_polls_until_the_end_and_reports_each_change() -> None:
    server = Server(
        [
            answer(200, batch_body(done=0)),
            answer(200, batch_body(done=0)),
            answer(200, batch_body(done=1)),
            answer(200, batch_body("completed", done=2)),
        ]
    )
    seen: list[int] = []
    batch = client(server).batches.wait(
        BATCH_ID, on_progress=lambda b: seen.append(b.counts.finished), poll_s=0
    )
    assert batch.status == "completed"
    assert batch.counts.finished == 2
    assert seen == [0, 1, 2]  # the repeated 0 is not news
    assert len(server.requests) == 4


def test_wait_raises_batch_timeout_with_the_batch_as_it_stands() -> None:
    server = Server([answer(200, batch_body(done=1))] * 50)
    with pytest.raises(agentmill.BatchTimeoutError) as raised:
        client(server).batches.wait(BATCH_ID, poll_s=0.01, timeout_s=0.05)
    assert raised.value.batch.counts.finished == 1
    assert "1/2 items finished" in str(raised.value)


def test_results_skip_keepalives_and_resume_after_a_drop_without_repeats() -> None:
    server = Server(
        [
            lambda _r: jsonl_stream(dropping([result_line(0), b"\n", result_line(1)])),
            lambda _r: jsonl_stream(result_line(0) + result_line(1) + result_line(2)),
        ]
    )
    with client(server).batches.results(BATCH_ID, wait=True) as results:
        got = list(results)
    assert [r.position for r in got] == [0, 1, 2]
    assert all(isinstance(r, BatchResult) for r in got)
    assert [dict(r.url.params) for r in server.requests] == [{"wait": "true"}] * 2
    assert server.requests[0].url.path == RESULTS
    assert server.requests[0].extensions["timeout"]["read"] == 45  # past the 15 s keepalives


def test_results_of_an_unknown_batch_raise_not_found_at_once() -> None:
    server = Server([answer(404, error_body("not_found", "batch not found"))])
    with pytest.raises(agentmill.NotFoundError):
        list(client(server).batches.results(BATCH_ID))
    assert len(server.requests) == 1
    assert dict(server.requests[0].url.params) == {}


def test_get_list_and_cancel_which_is_retried_as_safe_to_repeat() -> None:
    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    server = Server(
        [
            answer(200, batch_body()),
            answer(200, {"data": [batch_body()], "next_cursor": "c1"}),
            answer(200, {"data": [batch_body("completed", done=2)], "next_cursor": None}),
            dropped,
            answer(200, batch_body("cancelled", cancel_requested=True)),
        ]
    )
    batches = client(server).batches
    assert batches.get(BATCH_ID).id == BATCH_ID
    assert [b.status for b in batches.list(limit=1)] == ["running", "completed"]
    assert batches.cancel(BATCH_ID).status == "cancelled"
    assert [(r.method, r.url.path) for r in server.requests[3:]] == [
        ("POST", f"/v1/batches/{BATCH_ID}/cancel")
    ] * 2


def test_async_create_wait_and_results() -> None:
    server = Server(
        [
            answer(201, batch_body()),
            answer(200, batch_body(done=1)),
            answer(200, batch_body("completed", done=2)),
            lambda _r: jsonl_stream(result_line(0) + b"\n" + result_line(1, "two")),
            answer(200, batch_body("completed", done=2)),
        ]
    )
    progress: list[int] = []

    async def main() -> list[str | None]:
        async with async_client(server) as am:
            batch = await am.batches.create(AGENT_ID, ["a", "b"])
            await am.batches.wait(
                batch.id, on_progress=lambda b: progress.append(b.counts.finished), poll_s=0
            )
            outputs = [r.output async for r in am.batches.results(batch.id)]
            assert (await am.batches.cancel(batch.id)).status == "completed"
            return outputs

    assert asyncio.run(main()) == ["ok", "two"]
    assert progress == [1, 2]
