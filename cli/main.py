"""The `agentmill` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from core.config import Settings, load_settings
from core.errors import AgentmillError, ConfigError, UserError
from core.log import configure_logging
from core.metrics import leave_multiprocess_mode, prepare_metrics_dir


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentmill", description="Self-hostable agent runtime.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start everything: database, migrations, API")
    api = commands.add_parser("api", help="serve the REST API only (database must be migrated)")
    for command in (up, api):
        command.add_argument("--host", help="address to bind (default AGENTMILL_API_HOST)")
        command.add_argument("--port", type=_port, help="port to bind (default AGENTMILL_API_PORT)")

    inference = commands.add_parser(
        "inference", help="serve the OpenAI-compatible inference server (chat + embeddings)"
    )
    inference.add_argument("--host", help="address to bind (default AGENTMILL_INFERENCE_HOST)")
    inference.add_argument("--port", type=_port, help="port (default AGENTMILL_INFERENCE_PORT)")
    inference.add_argument("--engine", choices=["llama", "transformers"], help="engine to run")
    inference.add_argument("--model", type=Path, help="GGUF file or HF model directory")
    inference.add_argument(
        "--dummy-weights", action="store_true", help="transformers: random weights (benchmarks)"
    )

    worker = commands.add_parser("worker", help="run a Celery worker that executes agent runs")
    worker.add_argument(
        "--concurrency", type=int, help="runs at once (default AGENTMILL_WORKER_CONCURRENCY)"
    )

    commands.add_parser("migrate", help="bring the database schema up to date")

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    create = keys.add_parser("create", help="create a key (and its tenant if new); print it")
    create.add_argument("--tenant", required=True, help="tenant name")
    create.add_argument("--name", help="a label for the key")
    revoke = keys.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key", help="the key id (as `keys list` shows it) or the whole key")
    listing = keys.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--tenant", help="only this tenant's keys")
    memory = commands.add_parser("memory", help="long-term memory maintenance").add_subparsers(
        dest="memory_command", required=True, metavar="ACTION"
    )
    reembed = memory.add_parser(
        "reembed",
        help="re-embed every memory with AGENTMILL_EMBEDDING_MODEL (stop API and workers first)",
    )
    reembed.add_argument(
        "--batch-size", type=int, default=256, help="memories per model call (default 256)"
    )
    _client_commands(commands)
    return parser


def _client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`chat`, `batch`, `mcp` and `schedules`: clients of a running server (cli/chat.py,
    cli/batch.py, cli/mcp.py, cli/schedules.py)."""
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument(
        "--base-url", help="the server (default AGENTMILL_BASE_URL, else http://127.0.0.1:8000)"
    )
    server.add_argument(
        "--api-key", help="default AGENTMILL_API_KEY, else $AGENTMILL_HOME/api-key (from `up`)"
    )

    chat = commands.add_parser("chat", parents=[server], help="talk to an agent in the terminal")
    chat.add_argument("agent", metavar="AGENT", help="the agent's name or id")
    chat.add_argument("--user", help="the end user (scopes long-term memory)")
    chat.add_argument("--session", help="continue this session instead of starting one")

    batch = commands.add_parser("batch", help="run many inputs on an agent").add_subparsers(
        dest="batch_command", required=True, metavar="ACTION"
    )
    submit = batch.add_parser("submit", parents=[server], help="start a batch from a JSONL file")
    submit.add_argument("file", metavar="FILE.jsonl", type=Path, help='one {"input": ...} a line')
    submit.add_argument("--agent", required=True, help="the agent's name or id")
    submit.add_argument("--concurrency", type=int, help="items at once (server default 4)")
    submit.add_argument("--output", type=Path, help="write the results here (default stdout)")
    submit.add_argument(
        "--no-wait", action="store_true", help="print the batch id and return at once"
    )
    status = batch.add_parser("status", parents=[server], help="a batch's progress")
    status.add_argument("batch_id", metavar="ID")
    results = batch.add_parser("results", parents=[server], help="a batch's results as JSONL")
    results.add_argument("batch_id", metavar="ID")
    results.add_argument("--output", type=Path, help="write them here (default stdout)")
    results.add_argument("--wait", action="store_true", help="follow the batch until it ends")
    cancel = batch.add_parser("cancel", parents=[server], help="stop a batch")
    cancel.add_argument("batch_id", metavar="ID")

    mcp = commands.add_parser("mcp", help="MCP servers agents take tools from").add_subparsers(
        dest="mcp_command", required=True, metavar="ACTION"
    )
    add = mcp.add_parser("add", parents=[server], help="register an MCP server")
    add.add_argument("name", metavar="NAME", help="its tools are called NAME__<tool>")
    add.add_argument("--url", help="a streamable HTTP endpoint")
    add.add_argument(  # not dest `command`: that names the subcommand
        "--command", dest="stdio_command", help="a stdio server the deployer allows, by name"
    )
    add.add_argument(
        "--header", action="append", default=[], help="'Name: value', sent with every request"
    )
    add.add_argument("--timeout", type=float, help="limit for one tool call, in seconds")
    mcp.add_parser("list", parents=[server], help="the registered servers")
    show = mcp.add_parser("show", parents=[server], help="a server and its tools")
    show.add_argument("server", metavar="SERVER", help="its name or id")
    remove = mcp.add_parser("remove", parents=[server], help="delete a server")
    remove.add_argument("server", metavar="SERVER", help="its name or id")
    _schedule_commands(commands, server)


def _schedule_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], server: argparse.ArgumentParser
) -> None:
    """`schedules ACTION` (cli/schedules.py)."""
    schedules = commands.add_parser(
        "schedules", help="run an agent on a cron expression or an interval"
    ).add_subparsers(dest="schedules_command", required=True, metavar="ACTION")
    create = schedules.add_parser("create", parents=[server], help="schedule an agent")
    create.add_argument("--agent", required=True, help="the agent's name or id")
    create.add_argument("--input", required=True, help="the message each fire sends")
    create.add_argument("--cron", help="'minute hour day-of-month month day-of-week'")
    create.add_argument("--interval", type=int, help="or: every this many seconds")
    create.add_argument("--timezone", help="the IANA zone --cron is read in (default UTC)")
    create.add_argument("--user", help="the runs' end user (scopes long-term memory)")
    create.add_argument(
        "--session-mode",
        choices=["new", "fixed"],
        default="new",
        help="new: a session per fire (default); fixed: every fire in one session",
    )
    create.add_argument(
        "--missed",
        choices=["run_once", "skip"],
        default="run_once",
        help="fires missed while nothing ran: one late run (default), or none",
    )
    create.add_argument("--description", default="", help="a note kept with the schedule")
    create.add_argument("--paused", action="store_true", help="create it paused")
    listing = schedules.add_parser("list", parents=[server], help="the tenant's schedules")
    listing.add_argument("--agent", help="only this agent's (its name or id)")
    for action, text in (
        ("show", "a schedule and what it runs"),
        ("pause", "stop firing until resumed"),
        ("resume", "fire again from the next time after now"),
        ("delete", "delete a schedule (its runs stay)"),
        ("runs", "a schedule's latest fires and their runs, newest first"),
    ):
        one = schedules.add_parser(action, parents=[server], help=text)
        one.add_argument("schedule", metavar="ID", help="the schedule's id")
    runs = schedules.choices["runs"]
    runs.add_argument("--limit", type=int, default=20, help="how many fires (1-100, default 20)")


def _with_address(settings: Settings, args: argparse.Namespace) -> Settings:
    update: dict[str, object] = {}
    if args.host is not None:
        update["api_host"] = args.host
    if args.port is not None:
        update["api_port"] = args.port
    return settings.model_copy(update=update)


def _inference_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    update: dict[str, object] = {}
    for flag, name in (
        ("host", "inference_host"),
        ("port", "inference_port"),
        ("engine", "inference_engine"),
        ("model", "inference_model"),
    ):
        if getattr(args, flag) is not None:
            update[name] = getattr(args, flag)
    if args.dummy_weights:
        update["inference_dummy_weights"] = True
    return settings.model_copy(update=update)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    # Imported per command so `agentmill keys ...` does not pay for FastAPI and uvicorn.
    if args.command in ("chat", "batch", "mcp", "schedules"):
        return _run_client(args, settings)
    # Before anything imports prometheus_client (core/metrics.py): the API and the workers
    # share their host's metrics (`up` passes the directory to its children); the inference
    # server keeps its own.
    if args.command in ("up", "api", "worker"):
        prepare_metrics_dir(settings)
    elif args.command == "inference":
        leave_multiprocess_mode()
    if args.command == "up":
        from cli.runtime import up

        return up(_with_address(settings, args))
    if args.command == "api":
        from cli.serve import serve

        return serve(_with_address(settings, args))
    if args.command == "inference":
        from inference.server.main import serve as serve_inference

        return serve_inference(_inference_settings(settings, args))
    if args.command == "worker":
        from agents.worker.main import run_worker

        return run_worker(args.concurrency)
    if args.command == "migrate":
        from cli.admin import run_migrate

        return run_migrate(settings)
    from cli import admin

    if args.command == "memory":
        return admin.reembed(settings, args.batch_size)
    if args.keys_command == "create":
        return admin.create_key(settings, args.tenant, args.name)
    if args.keys_command == "revoke":
        return admin.revoke_key(settings, args.key)
    return admin.list_keys(settings, args.tenant)


def _run_client(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.command == "chat":
            from cli import chat as cli_chat

            return cli_chat.main(args, settings)
        if args.command == "mcp":
            from cli import mcp as cli_mcp

            return cli_mcp.main(args, settings)
        if args.command == "schedules":
            from cli import schedules as cli_schedules

            return cli_schedules.main(args, settings)
        from cli import batch as cli_batch

        return cli_batch.main(args, settings)
    except ModuleNotFoundError as exc:  # a server-only install (the Docker image)
        if exc.name != "agentmill":
            raise
        raise UserError("this command needs the agentmill SDK: pip install ./sdk") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `agentmill` console script."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"agentmill: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        return _run(args, settings)
    except AgentmillError as exc:
        print(f"agentmill: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
