"""The single-event ingest route's fast path: the success case without the framework's layers.

``POST /api/v1/lineage`` is what the OpenLineage HTTP transport and Airflow's provider send,
one request per event, so its per-request cost is the server's capacity.  This ASGI
middleware answers the common case itself — a credential verified in the last seconds
(:meth:`lineage.auth.authenticate.Authenticator.cached`) that holds ``emitter``, an
uncompressed body under the limit, a valid event inside the token's scope, a group commit
that succeeded — with the same 201 the route gives.

Everything else is **replayed, unchanged, through the full application**: the buffered body
is handed to the regular route (:func:`lineage.api.lineage.post_event`), which authenticates,
validates and answers exactly as it always has (401, 403, 400 naming the field, 413, 503).
So there is one implementation of every refusal, and the fast path can only say 201 when
the regular route would have.  A failed commit is replayed too: the route submits the event
again (stored once, whatever happens: ingest is idempotent by event key); a *cancelled*
request is not (it ends there).  A body over the limit, received or declared, always goes to
the route (413), and paths are compared as the routes see them (without ``root_path``).
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers

from lineage import metrics
from lineage.api.freshness import route_path
from lineage.api.security import EMIT, scope_problem
from lineage.errors import LineageError
from lineage.events import parse_raw

PATH = "/api/v1/lineage"
_CREATED = {"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"0")]}
_EMPTY = {"type": "http.response.body", "body": b"", "more_body": False}


class FastIngest:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or route_path(scope) != PATH:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        limit = state.settings.max_body_bytes
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the route see it
                await self.app(scope, _replay(chunks, message, receive), send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limit:
                break
        # Over the limit, even in the body's last (or only) message: the route's 413, never a 201.
        event = None if more or size > limit else self._fast(scope, state, chunks)
        if event is None:
            await self.app(scope, _replay(chunks, None, receive, more), send)
            return
        try:
            await asyncio.wrap_future(state.committer.submit(event))
        except asyncio.CancelledError:  # the request itself was cancelled: end it, do not submit again
            raise
        except Exception:  # noqa: BLE001 - the full route answers (and retries) it properly
            await self.app(scope, _replay(chunks, None, receive, False), send)
            return
        metrics.events_accepted.labels("single").inc()
        await send(_CREATED)
        await send(_EMPTY)

    @staticmethod
    def _fast(scope, state, chunks: list[bytes]):
        """The event, if this request can be answered 201 without the full stack; else None."""
        headers = Headers(scope=scope)
        if headers.get("content-encoding", "identity").lower() not in ("", "identity"):
            return None
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > state.settings.max_body_bytes:
            return None  # the route refuses on the declared length alone (413): so must this path
        auth = state.authenticator
        if len(headers.getlist(auth.proxy_header)) > 1:
            return None
        client = scope.get("client")
        principal = auth.cached(headers.get("authorization"), headers.get(auth.proxy_header), client[0] if client else None)
        if principal is None or not principal.has(*EMIT):
            return None
        try:
            event = parse_raw(b"".join(chunks), datasets=False)  # stored raw, derived later
        except LineageError:
            return None
        if scope_problem(principal, event.kind, event.job_namespace) is not None:
            return None
        return event


def _replay(chunks: list[bytes], last, receive, more: bool = False):
    """A ``receive`` that first gives back what was read, then the rest from the client."""
    pending = [last] if last is not None else [{"type": "http.request", "body": b"".join(chunks), "more_body": more}]

    async def replay():
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
