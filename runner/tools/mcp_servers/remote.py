"""The HTTP client a remote MCP server is reached with, under the http tools' host rules.

The server's host is checked with ``netguard`` before anything is sent (private, loopback and
link-local addresses refused unless ``allow_private_network``; cloud metadata always), and every
request the SDK makes is pinned to the address that was checked (the Host header and TLS SNI keep
the name), so a DNS answer that changes after the check cannot redirect the session. A request for
any other host (the SDK only follows same-origin redirects, but a bug must not widen that) is
refused. Proxy variables are ignored, as for http tools: the check must apply to the real target.
"""

from __future__ import annotations

from typing import Mapping

import httpx2

from runner import __version__
from runner.tools import netguard
from runner.tools.http_tool import ssl_context
from runner.tools.mcp_servers.connection import McpStartError


class RemoteRefused(McpStartError):
    """The server's URL is not allowed by the host rules."""


async def guarded_client(url: str, headers: Mapping[str, str], *, allow_private: bool) -> httpx2.AsyncClient:
    target = httpx2.URL(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        vetted = await netguard.vet_host(target.host, port, allow_private=allow_private)
    except netguard.BlockedAddress as e:
        raise RemoteRefused(str(e).replace("allow_private_network: true", "allow_private_network: true under mcp:")) from None
    name = target.host

    async def pin(request: httpx2.Request) -> None:
        if request.url.host not in (name, vetted.address):
            raise RemoteRefused(f"the MCP session tried to reach {request.url.host}, not {name}; refused")
        if request.url.host == name and name != vetted.address:
            request.url = request.url.copy_with(host=vetted.address)
            if request.url.scheme == "https":
                request.extensions["sni_hostname"] = name

    return httpx2.AsyncClient(
        headers={"User-Agent": f"flowrun/{__version__}", **headers},
        timeout=httpx2.Timeout(30.0, read=300.0),
        follow_redirects=False,
        trust_env=False,
        verify=ssl_context(),
        event_hooks={"request": [pin]},
    )
