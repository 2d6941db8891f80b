"""`agentmill chat AGENT`: a conversation in the terminal, through the SDK.

Each line read is sent as a message. The reply streams as the model writes it, with one line
per tool call and per tool result; `/exit` or the end of input leaves. Ctrl-C during a reply
cancels its run and returns to the prompt; at the prompt it ends the chat. A tool call that
needs approval is asked about inline: y (run it), n (deny, with an optional reason for the
model) or e (edit: type the replacement arguments as a JSON object). A question the model
asks (its ask_user tool) is printed, and the next line typed is the answer (empty: none).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import dataclass
from typing import TextIO

import agentmill
from agentmill import (
    Decision,
    MessageDeltaEvent,
    MessageEvent,
    RunEvent,
    RunFinishedEvent,
    RunRequiresActionEvent,
    ToolCallEvent,
    ToolResultEvent,
)

from cli import client as cli_client
from core.config import Settings
from core.errors import UserError

PROMPT = "you> "
EXIT_COMMANDS = frozenset({"/exit", "/quit"})
PREVIEW_CHARS = 100
"""Longest tool call or tool result shown (they get one line each)."""


@dataclass(frozen=True)
class Console:
    """Where a chat reads and writes: the terminal, or a test's streams."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO

    @property
    def echo(self) -> bool:
        """Whether to echo input lines: when they come from a pipe, the terminal did not."""
        return not self.stdin.isatty()


def main(args: argparse.Namespace, settings: Settings, console: Console | None = None) -> int:
    """`agentmill chat`: connect, find the agent, talk until the input ends."""
    console = console or Console(sys.stdin, sys.stdout, sys.stderr)
    with cli_client.connected(cli_client.target(args, settings)) as client:
        agent = cli_client.find_agent(client, args.agent)
        return chat(client, agent, console, session_id=args.session, user_id=args.user)


def chat(
    client: agentmill.Client,
    agent: agentmill.Agent,
    console: Console,
    *,
    session_id: str | None = None,
    user_id: str | None = None,
) -> int:
    """Read lines from `console` and send each to the agent, streaming its replies."""
    session = open_session(client, agent, session_id, user_id)
    console.stderr.write(
        f"chatting with {agent.name} (session {session.id}); "
        "/exit or Ctrl-D ends, Ctrl-C stops a reply\n"
    )
    console.stderr.flush()
    while True:
        console.stdout.write(PROMPT)
        console.stdout.flush()
        line = console.stdin.readline()
        if not line:  # end of input
            console.stdout.write("\n")
            return 0
        text = line.strip()
        if console.echo:
            console.stdout.write(text + "\n")
        if text in EXIT_COMMANDS:
            return 0
        if text:
            reply(client, session.id, text, Transcript(console.stdout, agent.name), console)


def open_session(
    client: agentmill.Client,
    agent: agentmill.Agent,
    session_id: str | None,
    user_id: str | None,
) -> agentmill.Session:
    """A new session of the agent for `user_id`, or the one to continue."""
    if session_id is None:
        return client.sessions.create(agent.id, user_id=user_id)
    try:
        session = client.sessions.get(session_id)
    except agentmill.NotFoundError:
        raise UserError(f"unknown session {session_id!r}") from None
    if session.agent_id != agent.id:
        raise UserError(f"session {session_id} belongs to another agent")
    if user_id is not None and session.user_id != user_id:
        raise UserError(f"session {session_id} is end user {session.user_id!r}'s, not {user_id!r}")
    return session


def reply(
    client: agentmill.Client,
    session_id: uuid.UUID,
    text: str,
    view: Transcript,
    console: Console,
) -> None:
    """Send one message and show its run's events; Ctrl-C cancels the run. An error answer
    (a busy session, a rate limit) is reported and the chat goes on."""
    # queue: after a Ctrl-C the cancelled run may still be stopping; the next message waits
    # for it instead of being refused.
    events = client.sessions.stream(session_id, text, queue=True)
    try:
        for event in events:
            view.show(event)
            if isinstance(event, RunRequiresActionEvent):
                approve(client, event, view, console)
    except KeyboardInterrupt:
        events.close()
        view.end_line()
        run_id = events.run_id or active_run(client, session_id)
        if run_id is not None:
            client.runs.cancel(run_id)
        view.note("cancelled")
    except agentmill.AgentmillAPIError as exc:
        view.end_line()
        console.stderr.write(f"error: {exc.message} ({exc.status} {exc.type})\n")
    finally:
        events.close()


def approve(
    client: agentmill.Client, event: RunRequiresActionEvent, view: Transcript, console: Console
) -> None:
    """Ask about each call the run waits for and send the decisions; asks again when the
    server refuses them (an edit that does not fit the tool's schema). The end of input
    denies what is left."""
    while True:
        decisions = [ask(call, view, console) for call in event.calls]
        try:
            client.runs.approve(event.run_id, decisions)
            return
        except agentmill.ConflictError as exc:  # decided elsewhere meanwhile, or expired
            view.note(f"not sent: {exc.message}")
            return
        except agentmill.AgentmillAPIError as exc:
            view.note(f"not accepted: {exc.message}")


def ask(call: agentmill.PendingCall, view: Transcript, console: Console) -> Decision:
    """One decision, read from the console."""
    view.end_line()
    if call.question is not None:  # the model's ask_user: the typed line is the answer
        typed = _read(console, f"  {call.question}\n  your answer: ")
        return Decision.answer(call.call_id, typed) if typed else Decision.deny(call.call_id)
    while True:
        answer = _read(console, f"  approve {call.name}({preview(call.arguments)})? [y/n/e] ")
        if answer is None or answer.lower() in ("n", "no"):
            reason = _read(console, "  reason for the model (optional): ") if answer else None
            return Decision.deny(call.call_id, reason or None)
        if answer.lower() in ("y", "yes", ""):
            return Decision.approve(call.call_id)
        if answer.lower() in ("e", "edit"):
            arguments = _arguments(view, console)
            if arguments is not None:
                return Decision.edit(call.call_id, arguments)


def _arguments(view: Transcript, console: Console) -> dict[str, object] | None:
    """A JSON object read from the console, asked again until it is one; None (back to the
    question) for an empty line or the end of input."""
    while True:
        typed = _read(console, "  arguments as JSON (empty: back): ")
        if not typed:
            return None
        try:
            arguments = json.loads(typed)
        except json.JSONDecodeError as exc:
            view.note(f"not JSON: {exc.msg}")
            continue
        if isinstance(arguments, dict):
            return arguments
        view.note("the arguments must be a JSON object")


def _read(console: Console, prompt: str) -> str | None:
    console.stdout.write(prompt)
    console.stdout.flush()
    line = console.stdin.readline()
    if not line:
        console.stdout.write("\n")
        return None
    text = line.strip()
    if console.echo:
        console.stdout.write(text + "\n")
    return text


def active_run(client: agentmill.Client, session_id: uuid.UUID) -> uuid.UUID | None:
    """The session's newest run if it has not ended (a Ctrl-C before its first event)."""
    runs = client.sessions.runs(session_id, limit=1)
    return runs[0].id if runs and not runs[0].finished else None


def preview(text: str) -> str:
    """`text` on one line, cut to PREVIEW_CHARS."""
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


@dataclass
class Transcript:
    """Shows one reply's events as they arrive."""

    out: TextIO
    name: str
    """The agent's name, the prefix of its text."""
    text: str = ""
    """Text streamed by the latest step attempt."""
    attempt: tuple[int, int] | None = None
    """(step, attempt) whose text is streaming."""
    midline: bool = False
    """A line is open on the output."""

    def show(self, event: RunEvent) -> None:
        """Write what `event` adds to the conversation."""
        if isinstance(event, MessageDeltaEvent):
            self._delta(event)
        elif isinstance(event, ToolCallEvent):
            self.note(f"tool {event.name}({preview(event.arguments)})")
        elif isinstance(event, ToolResultEvent):
            label = "tool error" if event.is_error else "result"
            self.note(f"{label} {preview(event.result)}")
        elif isinstance(event, MessageEvent):
            self._answer(event.content)
        elif isinstance(event, RunRequiresActionEvent):
            self.note(f"{len(event.calls)} tool call(s) wait for your approval")
        elif isinstance(event, RunFinishedEvent) and event.status != "succeeded":
            why = (event.error or {}).get("message") or event.stop_reason or "no answer"
            self.note(f"run {event.status}: {preview(str(why))}")
        self.out.flush()

    def note(self, text: str) -> None:
        """One bracketed line of its own."""
        self.end_line()
        self.out.write(f"  [{text}]\n")
        self.out.flush()

    def end_line(self) -> None:
        """Close the open line, if any."""
        if self.midline:
            self.out.write("\n")
            self.midline = False

    def _delta(self, event: MessageDeltaEvent) -> None:
        if (event.step, event.attempt) != self.attempt:  # a new step, or a retried one
            self.end_line()
            self.attempt = (event.step, event.attempt)
            self.text = ""
        self.text += event.delta
        delta = event.delta
        if not self.midline:
            # The answer is kept stripped: a line starts at its first visible character, so
            # what is shown is what the run's output says.
            delta = delta.lstrip()
            if not delta:
                return
            self.out.write(f"{self.name}> ")
            self.midline = True
        self.out.write(delta)

    def _answer(self, content: str) -> None:
        streamed = self.midline and self.text.strip() == content.strip()
        self.end_line()
        if not streamed:  # nothing streamed, or text that the final answer differs from
            self.out.write(f"{self.name}> {content}\n")
