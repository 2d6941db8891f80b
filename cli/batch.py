"""`agentmill batch submit|status|results|cancel`: batches through the SDK, with a progress
bar on stderr while a submitted batch runs."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import agentmill

from cli import client as cli_client
from core.config import Settings
from core.errors import UserError

BAR_WIDTH = 24


@dataclass
class ProgressBar:
    """One line on a terminal, redrawn with \\r as the batch's counts change; a line per change
    where the stream is not a terminal (a log)."""

    out: TextIO
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    width: int = BAR_WIDTH
    drawn: bool = False
    shown: str = ""
    """The last bar drawn, without its time."""

    def __post_init__(self) -> None:
        self.started = self.clock()

    def update(self, batch: agentmill.Batch) -> None:
        """Draw the batch's progress."""
        line = render(batch, self.clock() - self.started, self.width)
        bar = line.rsplit("  ", 1)[0]
        if self.out.isatty():
            self.out.write(f"\r{line}\x1b[K")
        elif bar != self.shown:  # a log gets a line only when the bar itself changes
            self.out.write(line + "\n")
        self.out.flush()
        self.shown = bar
        self.drawn = True

    def finish(self) -> None:
        """End the bar's line."""
        if self.drawn and self.out.isatty():
            self.out.write("\n")
            self.out.flush()


def render(batch: agentmill.Batch, elapsed_s: float, width: int = BAR_WIDTH) -> str:
    """`[#####-----] 2/4 done, 1 running, 1 failed  3s`: the bar of a batch's counts."""
    counts = batch.counts
    filled = width * counts.finished // counts.total if counts.total else width
    parts = [f"{counts.finished}/{counts.total} done"]
    for number, state in (
        (counts.running, "running"),
        (counts.queued, "queued"),
        (counts.pending, "waiting"),
        (counts.failed, "failed"),
        (counts.cancelled, "cancelled"),
    ):
        if number:
            parts.append(f"{number} {state}")
    return f"[{'#' * filled}{'-' * (width - filled)}] {', '.join(parts)}  {elapsed_s:.0f}s"


def summary(batch: agentmill.Batch) -> str:
    """One line: the batch's id, status and outcome."""
    counts = batch.counts
    return (
        f"batch {batch.id} {batch.status}: {counts.succeeded} succeeded, {counts.failed} failed, "
        f"{counts.cancelled} cancelled of {counts.total}"
    )


def stopping(batch: agentmill.Batch) -> str:
    """What to add to the summary of a batch whose cancel is under way."""
    if batch.cancel_requested and not batch.finished:
        return " (cancelling: running items stop at their next step)"
    return ""


def write_results(results: Iterable[agentmill.BatchResult], out: TextIO) -> int:
    """Write each result as a JSON line; how many were written."""
    written = 0
    for result in results:
        out.write(result.model_dump_json() + "\n")
        out.flush()
        written += 1
    return written


def main(
    args: argparse.Namespace,
    settings: Settings,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Dispatch `agentmill batch ACTION`."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    with cli_client.connected(cli_client.target(args, settings)) as client:
        if args.batch_command == "submit":
            return submit(client, args, out, err)
        if args.batch_command == "status":
            batch = client.batches.get(args.batch_id)
            out.write(status_text(batch))
            return 0
        if args.batch_command == "results":
            client.batches.get(args.batch_id)  # an unknown id fails before --output is written
            return results(client, args.batch_id, args.output, out, wait=args.wait, note=err)
        cancelled = client.batches.cancel(args.batch_id)
        out.write(summary(cancelled) + stopping(cancelled) + "\n")
        return 0


def submit(client: agentmill.Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Upload the JSONL file; unless --no-wait, follow the batch, then write its results."""
    path: Path = args.file
    data = cli_client.read_file(path)
    agent = cli_client.find_agent(client, args.agent)
    try:
        batch = client.batches.upload(agent.id, data, concurrency=args.concurrency)
    except agentmill.UnprocessableEntityError as exc:
        if exc.param is None or not exc.param.startswith(("line ", "items")):
            raise
        raise UserError(f"{path}: {exc.message}") from None  # the message names the line
    err.write(f"batch {batch.id}: {batch.counts.total} items on {agent.name}\n")
    if args.no_wait:
        out.write(f"{batch.id}\n")
        return 0
    bar = ProgressBar(err)
    try:
        batch = client.batches.wait(batch.id, on_progress=bar.update)
    except KeyboardInterrupt:
        bar.finish()
        err.write(f"stopped watching; the batch goes on: agentmill batch status {batch.id}\n")
        return 130
    bar.finish()
    err.write(summary(batch) + "\n")
    return results(client, str(batch.id), args.output, out, wait=False, note=err)


def results(
    client: agentmill.Client,
    batch_id: str,
    output: Path | None,
    out: TextIO,
    *,
    wait: bool,
    note: TextIO | None = None,
) -> int:
    """Write the batch's results as JSONL to `output`, else to `out`."""
    with ExitStack() as stack:
        target = out
        if output is not None:
            try:
                target = stack.enter_context(output.open("w", encoding="utf-8"))
            except OSError as exc:
                raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None
        stream = stack.enter_context(client.batches.results(batch_id, wait=wait))
        written = write_results(stream, target)
    if output is not None and note is not None:
        note.write(f"{written} results written to {output}\n")
    return 0


def status_text(batch: agentmill.Batch) -> str:
    """What `batch status` prints."""
    counts, usage = batch.counts, batch.usage
    ended = f", finished {batch.finished_at:%Y-%m-%d %H:%M:%S}" if batch.finished_at else ""
    return (
        f"{summary(batch)}{stopping(batch)}\n"
        f"  items: {counts.pending} pending, {counts.queued} queued, {counts.running} running, "
        f"{counts.finished} finished\n"
        f"  usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens, "
        f"${usage.cost_usd:.4f}\n"
        f"  agent {batch.agent_id}, concurrency {batch.concurrency}, "
        f"created {batch.created_at:%Y-%m-%d %H:%M:%S}{ended}\n"
    )
