"""`agentmill mcp add|list|show|remove`: a tenant's MCP servers through the SDK. A server is
named on the command line by its name or its id."""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import TextIO

import agentmill

from cli import client as cli_client
from core.config import Settings
from core.errors import UserError


def find_server(client: agentmill.Client, ref: str) -> agentmill.McpServer:
    """The server with id `ref`, else the one named `ref`; `UserError` if there is none."""
    try:
        server_id = uuid.UUID(ref)
    except ValueError:
        server_id = None
    if server_id is not None:
        try:
            return client.mcp_servers.get(server_id)
        except agentmill.NotFoundError:
            pass
    for server in client.mcp_servers.list(limit=100):
        if server.name == ref:
            return server
    raise UserError(f"unknown MCP server {ref!r}: no server has this name or id")


def headers(pairs: list[str]) -> dict[str, str] | None:
    """`--header 'Name: value'` (or `Name=value`) options as a dict; None when there are none."""
    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition(":") if ":" in pair else pair.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--header {pair!r}: write it as 'Name: value'")
        found[name.strip()] = value.strip()
    return found or None


def line(server: agentmill.McpServer) -> str:
    """One line for a listing."""
    where = server.url if server.transport == "http" else f"stdio:{server.command}"
    tools = "not listed yet" if server.tools is None else f"{len(server.tools)} tools"
    failing = f", last listing failed: {server.last_error}" if server.last_error else ""
    return f"{server.name}  {where}  {tools}{failing}  ({server.id})"


def details(server: agentmill.McpServer) -> str:
    """A server with its last listing, one tool a line."""
    out = [line(server)]
    if server.header_names:
        out.append(f"  headers: {', '.join(server.header_names)} (values are never shown)")
    for tool in server.tools or []:
        offered = tool.exposed or f"not offered: {tool.problem}"
        out.append(f"  {offered}  {tool.description.splitlines()[0] if tool.description else ''}")
    return "\n".join(out) + "\n"


def main(args: argparse.Namespace, settings: Settings, stdout: TextIO | None = None) -> int:
    """Dispatch `agentmill mcp ACTION`."""
    out = stdout or sys.stdout
    with cli_client.connected(cli_client.target(args, settings)) as client:
        if args.mcp_command == "add":
            if (args.url is None) == (args.stdio_command is None):
                raise UserError("give one of --url (streamable HTTP) or --command (stdio)")
            server = client.mcp_servers.create(
                args.name,
                url=args.url,
                command=args.stdio_command,
                headers=headers(args.header),
                timeout_s=args.timeout,
            )
            out.write(line(server) + "\n")
        elif args.mcp_command == "list":
            for server in client.mcp_servers.list(limit=100):
                out.write(line(server) + "\n")
        elif args.mcp_command == "show":
            out.write(details(find_server(client, args.server)))
        else:
            found = find_server(client, args.server)
            client.mcp_servers.delete(found.id)
            out.write(f"removed {found.name}\n")
    return 0
