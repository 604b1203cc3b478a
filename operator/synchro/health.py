"""/healthz and /readyz, served from the start, before the Lease is taken: a standby is alive and ready too, and
both say which replica leads (kopf's own liveness endpoint would only open on the leader)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web


async def serve(url: str, role: Callable[[], str]) -> web.AppRunner:
    """Serve on the host and port of `url` (e.g. http://0.0.0.0:8080/healthz); `role` words the answer."""

    async def answer(_: web.Request) -> web.Response:
        return web.Response(text=role() + "\n")

    app = web.Application()
    app.add_routes([web.get("/healthz", answer), web.get("/readyz", answer)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    parts = urlsplit(url)
    await web.TCPSite(runner, parts.hostname or "0.0.0.0", parts.port or 8080).start()
    return runner
