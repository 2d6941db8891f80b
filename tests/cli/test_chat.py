"""`agentmill chat`: the loop's branches on a scripted server, then the command against the
real API (alone for its errors, with a real worker and model for a conversation)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import agentmill
import pytest

from cli import chat as cli_chat
from cli import client as cli_client
from cli import main as cli
from cli.chat import Console
from core.errors import UserError
from core.web.threaded import free_port
from tests.sdk.fakes import (
    AGENT_ID,
    RUN_ID,
    SESSION_ID,
    Server,
    agent_body,
    answer,
    client,
    error_body,
    event_stream,
    run_body,
    session_body,
    sse,
)

ROOT = Path(__file__).resolve().parents[2]
USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "cost_usd": 0.0}
AGENT = agentmill.Agent.model_validate(agent_body("helper", id=str(AGENT_ID)))


def console(lines: str) -> tuple[Console, io.StringIO, io.StringIO]:
    """A console reading `lines` (as a pipe would: echoed), and its outputs."""
    out, err = io.StringIO(), io.StringIO()
    return Console(io.StringIO(lines), out, err), out, err


def tool_run() -> list[bytes]:
    """A run that calls the calculator, then answers in two deltas."""
    return [
        sse(1, "run.queued", session_id=str(SESSION_ID)),
        sse(2, "run.started", attempt=1),
        sse(3, "step.started", step=1, attempt=1),
        sse(4, "tool.call", step=1, call_id="c1", name="calculator", arguments='{"x": "2+2"}'),
        sse(5, "tool.result", step=1, call_id="c1", result="4", is_error=False),
        sse(6, "step.started", step=2, attempt=1),
        sse(7, "message.delta", step=2, attempt=1, delta="The answer"),
        sse(8, "message.delta", step=2, attempt=1, delta=" is 4."),
        sse(9, "message", message_id=str(RUN_ID), content="The answer is 4."),
        sse(10, "run.succeeded", status="succeeded", stop_reason="answer", steps=2, usage=USAGE),
    ]


def interrupted(chunks: list[bytes]) -> Iterator[bytes]:
    """A reply body that sends `chunks`, then meets the user's Ctrl-C."""
    yield from chunks
    raise KeyboardInterrupt


def test_a_conversation_streams_tool_calls_and_the_answer() -> None:
    server = Server(
        [
            answer(201, session_body(user_id="ann")),
            lambda _r: event_stream(b"".join(tool_run())),
        ]
    )
    io_, out, err = console("what is 2+2?\n\n/exit\nnever sent\n")
    assert cli_chat.chat(client(server), AGENT, io_, user_id="ann") == 0
    assert out.getvalue() == (
        "you> what is 2+2?\n"
        '  [tool calculator({"x": "2+2"})]\n'
        "  [result 4]\n"
        "helper> The answer is 4.\n"
        "you> \n"
        "you> /exit\n"
    )
    assert f"session {SESSION_ID}" in err.getvalue()
    create, send = server.requests
    assert create.url.path == f"/v1/agents/{AGENT_ID}/sessions"
    assert send.url.path == f"/v1/sessions/{SESSION_ID}/messages"
    assert b'"stream":true' in send.content.replace(b" ", b"")


def test_an_answer_that_did_not_stream_is_printed_whole_and_a_failure_is_shown() -> None:
    failed = [
        sse(1, "run.queued", session_id=str(SESSION_ID)),
        sse(2, "message", message_id=str(RUN_ID), content="Hi there."),
        sse(
            3,
            "run.failed",
            status="failed",
            stop_reason="error",
            steps=1,
            usage=USAGE,
            error={"type": "model_error", "message": "the model went away"},
        ),
    ]
    server = Server([answer(201, session_body()), lambda _r: event_stream(b"".join(failed))])
    io_, out, _ = console("hello\n")
    cli_chat.chat(client(server), AGENT, io_)
    assert out.getvalue() == (
        "you> hello\nhelper> Hi there.\n  [run failed: the model went away]\nyou> \n"
    )


def test_an_answer_streamed_with_leading_whitespace_shows_as_the_runs_output() -> None:
    spaced = [
        sse(1, "run.queued", session_id=str(SESSION_ID)),
        sse(2, "message.delta", step=1, attempt=1, delta="\n "),
        sse(3, "message.delta", step=1, attempt=1, delta=" Hello"),
        sse(4, "message.delta", step=1, attempt=1, delta=" there. "),
        sse(5, "message", message_id=str(RUN_ID), content="Hello there."),
        sse(6, "run.succeeded", status="succeeded", stop_reason="answer", steps=1, usage=USAGE),
    ]
    server = Server([answer(201, session_body()), lambda _r: event_stream(b"".join(spaced))])
    io_, out, _ = console("hello\n")
    cli_chat.chat(client(server), AGENT, io_)
    assert out.getvalue() == "you> hello\nhelper> Hello there. \nyou> \n"


def test_calls_that_need_approval_are_asked_about_inline() -> None:
    pending = [
        {"call_id": "c1", "name": "transfer", "arguments": '{"amount": 500}', "parameters": {}},
        {"call_id": "c2", "name": "transfer", "arguments": '{"amount": 9}', "parameters": {}},
    ]
    waiting = [
        *tool_run()[:3],
        sse(4, "run.requires_action", step=1, calls=pending, expires_at="2026-12-08T00:00:00Z"),
        sse(5, "tool.approval", step=1, call_id="c1", decision="deny", message="too much"),
        sse(6, "tool.approval", step=1, call_id="c2", decision="edit", arguments='{"amount": 1}'),
        sse(7, "message", message_id=str(RUN_ID), content="I sent 1."),
        sse(8, "run.succeeded", status="succeeded", stop_reason="answer", steps=2, usage=USAGE),
    ]
    server = Server(
        [
            answer(201, session_body()),
            lambda _r: event_stream(b"".join(waiting)),
            answer(422, error_body("validation_error", "does not fit the tool's schema")),
            answer(200, run_body("queued")),
        ]
    )
    typed = 'pay\nn\ntoo much\ne\nnot json\n{"amount": "x"}\nn\ntoo much\ne\n{"amount": 1}\n'
    io_, out, _ = console(typed)
    assert cli_chat.chat(client(server), AGENT, io_) == 0
    shown = out.getvalue()
    assert "  [2 tool call(s) wait for your approval]\n" in shown
    assert '  approve transfer({"amount": 500})? [y/n/e] n\n' in shown
    assert "  [not JSON: Expecting value]\n" in shown
    assert "  [not accepted: does not fit the tool's schema]\n" in shown
    assert "helper> I sent 1.\n" in shown
    refused, sent = server.requests[2], server.requests[3]
    assert (sent.method, sent.url.path) == ("POST", f"/v1/runs/{RUN_ID}/approvals")
    assert json.loads(refused.content)["decisions"][1]["arguments"] == {"amount": "x"}
    assert json.loads(sent.content) == {
        "decisions": [
            {"call_id": "c1", "decision": "deny", "message": "too much"},
            {"call_id": "c2", "decision": "edit", "arguments": {"amount": 1}},
        ]
    }


def test_a_question_of_the_model_is_answered_with_the_next_line() -> None:
    asked = {
        "call_id": "q1",
        "name": "ask_user",
        "arguments": '{"question": "For how many people?"}',
        "parameters": {},
        "kind": "question",
    }
    waiting = [
        sse(1, "run.requires_action", step=1, calls=[asked], expires_at="2026-12-08T00:00:00Z"),
        sse(2, "message", message_id=str(RUN_ID), content="Booked for four."),
        sse(3, "run.succeeded", status="succeeded", stop_reason="answer", steps=2, usage=USAGE),
    ]
    server = Server(
        [
            answer(201, session_body()),
            lambda _r: event_stream(b"".join(waiting)),
            answer(200, run_body("queued")),
        ]
    )
    io_, out, _ = console("book a table\nFour of us.\n")
    assert cli_chat.chat(client(server), AGENT, io_) == 0
    assert "  For how many people?\n  your answer: Four of us.\n" in out.getvalue()
    assert json.loads(server.requests[2].content) == {
        "decisions": [{"call_id": "q1", "decision": "answer", "message": "Four of us."}]
    }


def test_ctrl_c_during_a_reply_cancels_its_run_and_returns_to_the_prompt() -> None:
    partial = [*tool_run()[:3], sse(4, "message.delta", step=1, attempt=1, delta="Once upon")]
    server = Server(
        [
            answer(201, session_body()),
            lambda _r: event_stream(interrupted(partial)),
            answer(200, run_body("running", cancel_requested=True)),
            lambda _r: event_stream(b"".join(tool_run())),
        ]
    )
    io_, out, _ = console("tell me a story\nwhat is 2+2?\n")
    assert cli_chat.chat(client(server), AGENT, io_) == 0
    assert out.getvalue().startswith(
        "you> tell me a story\nhelper> Once upon\n  [cancelled]\nyou> what is 2+2?\n"
    )
    cancel = server.requests[2]
    assert (cancel.method, cancel.url.path) == ("POST", f"/v1/runs/{RUN_ID}/cancel")
    assert b'"queue":true' in server.requests[3].content.replace(b" ", b"")


def test_ctrl_c_before_the_first_event_cancels_the_sessions_active_run() -> None:
    server = Server(
        [
            answer(201, session_body()),
            lambda _r: event_stream(interrupted([])),
            answer(200, {"data": [run_body("queued")], "next_cursor": None}),
            answer(200, run_body("cancelled")),
        ]
    )
    io_, out, _ = console("hi\n")
    cli_chat.chat(client(server), AGENT, io_)
    assert "  [cancelled]\n" in out.getvalue()
    runs, cancel = server.requests[2:]
    assert runs.url.path == f"/v1/sessions/{SESSION_ID}/runs"
    assert cancel.url.path == f"/v1/runs/{RUN_ID}/cancel"


def test_an_error_answer_is_reported_and_the_chat_goes_on() -> None:
    too_long = error_body("validation_error", "content: too long", "content")
    server = Server(
        [
            answer(201, session_body()),
            answer(422, too_long),
            lambda _r: event_stream(b"".join(tool_run())),
        ]
    )
    io_, out, err = console("x\nwhat is 2+2?\n")
    cli_chat.chat(client(server), AGENT, io_)
    assert "error: content: too long (422 validation_error)\n" in err.getvalue()
    assert "helper> The answer is 4.\n" in out.getvalue()


def test_a_session_to_continue_must_be_the_agents_and_the_users() -> None:
    other = agent_body("other")["id"]
    server = Server(
        [
            answer(200, session_body(user_id="ann")),
            answer(200, session_body(agent_id=other)),
            answer(404, error_body("not_found", "session not found")),
        ]
    )
    am = client(server)
    io_, _out, _ = console("/exit\n")
    assert cli_chat.chat(am, AGENT, io_, session_id=str(SESSION_ID), user_id="ann") == 0
    with pytest.raises(UserError, match="belongs to another agent"):
        cli_chat.chat(am, AGENT, io_, session_id=str(SESSION_ID))
    with pytest.raises(UserError, match="unknown session"):
        cli_chat.chat(am, AGENT, io_, session_id="nope")


def test_an_agent_is_found_by_id_or_by_name() -> None:
    server = Server(
        [
            answer(200, agent_body("helper", id=str(AGENT_ID))),
            answer(200, {"data": [agent_body("a"), agent_body("helper")], "next_cursor": None}),
            answer(200, {"data": [agent_body("a")], "next_cursor": None}),
        ]
    )
    am = client(server)
    assert cli_client.find_agent(am, str(AGENT_ID)).id == AGENT_ID
    assert cli_client.find_agent(am, "helper").name == "helper"
    with pytest.raises(UserError, match="unknown agent 'ghost'"):
        cli_client.find_agent(am, "ghost")
    assert [r.url.path for r in server.requests] == [f"/v1/agents/{AGENT_ID}"] + ["/v1/agents"] * 2


def test_the_tool_previews_stay_on_one_line() -> None:
    assert cli_chat.preview("a\n  b") == "a b"
    assert len(cli_chat.preview("x" * 500)) == cli_chat.PREVIEW_CHARS


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`main` in this process: no key file, no key in the environment, logging left alone."""
    monkeypatch.setenv("AGENTMILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AGENTMILL_API_KEY", raising=False)
    monkeypatch.delenv("AGENTMILL_BASE_URL", raising=False)
    monkeypatch.setattr(cli, "configure_logging", lambda *_: None)


@pytest.mark.usefixtures("quiet")
def test_errors_are_one_line_and_exit_1(
    api_url: str, api_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def error_of(*args: str) -> str:
        assert cli.main(["chat", *args]) == 1
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1, captured.err
        return captured.err

    assert "no API key" in error_of("helper")
    unreachable = f"http://127.0.0.1:{free_port()}"
    assert "cannot reach the agentmill server" in error_of(
        "helper", "--base-url", unreachable, "--api-key", api_key
    )
    assert "refused the API key" in error_of(
        "helper", "--base-url", api_url, "--api-key", api_key[:-1] + "x"
    )
    assert "unknown agent 'ghost'" in error_of("ghost", "--base-url", api_url, "--api-key", api_key)


@pytest.mark.usefixtures("quiet")
def test_the_key_comes_from_the_environment_or_the_key_file(
    api_url: str, api_key: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with agentmill.Client(api_key, base_url=api_url) as am:
        am.agents.create("helper")
    monkeypatch.setenv("AGENTMILL_BASE_URL", api_url)
    monkeypatch.setattr(sys, "stdin", io.StringIO("/exit\n"))
    monkeypatch.setenv("AGENTMILL_API_KEY", api_key)
    assert cli.main(["chat", "helper"]) == 0
    monkeypatch.delenv("AGENTMILL_API_KEY")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "api-key").write_text(api_key + "\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("/exit\n"))
    assert cli.main(["chat", "helper"]) == 0


@pytest.mark.timeout(400)
def test_chat_with_a_live_worker(live_url: str, api_key: str, tmp_path: Path) -> None:
    with agentmill.Client(api_key, base_url=live_url) as am:
        agent = am.agents.create(
            "helper",
            instructions="You are a concise assistant.",
            max_steps=3,
            memory={"extract_facts": False},
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMILL_")}
    env["AGENTMILL_HOME"] = str(tmp_path / "home")
    env["AGENTMILL_API_KEY"] = api_key
    chat = subprocess.run(
        [sys.executable, "-m", "cli.main", "chat", "helper", "--base-url", live_url],
        input="Say hello in one short sentence.\n/exit\n",
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.startswith("you> Say hello in one short sentence.\n"), chat.stdout
    assert chat.stdout.endswith("you> /exit\n"), chat.stdout
    assert "chatting with helper" in chat.stderr
    session = re.search(r"session ([0-9a-f-]{36})", chat.stderr)
    assert session is not None, chat.stderr
    with agentmill.Client(api_key, base_url=live_url) as am:
        messages = list(am.sessions.messages(session[1]))
        (run,) = am.sessions.runs(session[1])
    assert run.agent_id == agent.id
    assert messages[0].content == "Say hello in one short sentence."
    assert run.finished
    if run.status == "succeeded":
        assert f"helper> {run.output}" in chat.stdout
        assert [m.role for m in messages] == ["user", "assistant"]
