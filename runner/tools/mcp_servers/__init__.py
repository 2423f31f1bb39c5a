"""MCP servers as a tool source: ``McpTools`` (manager) starts a workflow's servers, lists their tools
as ordinary ``ToolSpec``s and answers calls; ``connection`` is one live server (the SDK's client in
its own task), ``remote`` the guarded HTTP client, ``schemas`` and ``results`` the pure conversions.

Importing this package imports nothing from the ``mcp`` SDK: that happens when a server starts.
"""
