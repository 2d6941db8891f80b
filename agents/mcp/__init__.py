"""MCP servers as tool sources: a tenant registers servers (store, facade), an agent names the
ones it may use, and each worker lists their tools and calls them through the official `mcp`
SDK (connections, toolset), over HTTP only to the hosts core/egress.py allows."""
