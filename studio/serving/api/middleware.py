"""Pure ASGI middleware of the API (no body copies): request counts and latency per
route, the body-size limit, and the guard that turns an escaped exception into a JSON
answer. ``create_app`` adds them outermost last: ``Measure`` sees every answer."""

from __future__ import annotations

import logging
import time

from ..faults import storage_fault
from .errors import error_response

log = logging.getLogger("studio.serving.api")


class Measure:
    """Pure ASGI middleware: request counts and latency per route (no body copies)."""

    def __init__(self, inner, *, requests, latency):
        self.inner = inner
        self.requests, self.latency = requests, latency

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        started = time.perf_counter()
        status = [500]

        async def capture(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.inner(scope, receive, capture)
        finally:
            route = scope.get("route")
            path = route.path if route is not None else "unmatched"
            self.latency.labels(path).observe(time.perf_counter() - started)
            self.requests.labels(path, str(status[0])).inc()


class BodyLimit:
    """Pure ASGI middleware: read the body (at most ``max_body_bytes``, counted as it
    streams, whatever Content-Length says) before the app sees it; 413 beyond."""

    def __init__(self, inner, *, max_body_bytes: int):
        self.inner = inner
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        max_body_bytes = self.max_body_bytes
        too_large = error_response(
            413, f"the request body is larger than {max_body_bytes} bytes",
            headers={"Connection": "close"})
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                if int(declared) > max_body_bytes:
                    return await too_large(scope, receive, send)
            except ValueError:
                return await error_response(400, "bad Content-Length")(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_body_bytes:
                return await too_large(scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay():
            return body.pop() if body else await receive()

        await self.inner(scope, replay, send)


class Guard:
    """Pure ASGI middleware: an exception that escapes the app becomes a JSON answer
    (503 + Retry-After for storage faults; 500, traceback logged, otherwise) and is
    not re-raised — the server keeps the connection."""

    def __init__(self, inner, *, retry_after: dict):
        self.inner = inner
        self.retry_after = retry_after

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        started = [False]

        async def watch(message):
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        try:
            await self.inner(scope, receive, watch)
        except Exception as exc:
            if started[0]:
                raise  # half an answer is out: only closing the connection is honest
            fault = storage_fault(exc)
            if fault is not None:
                log.warning("%s %s: storage fault: %s", scope.get("method"),
                            scope.get("path"), fault)
                response = error_response(503, f"the store cannot be written now ({fault}); "
                                          "retry later", headers=self.retry_after)
            else:
                log.exception("%s %s failed", scope.get("method"), scope.get("path"))
                response = error_response(500, f"internal error ({type(exc).__name__}); "
                                          "the server log has the details")
            await response(scope, receive, send)
