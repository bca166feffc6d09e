"""Every error is one JSON object, ``{"error": message}`` (plus details where they help):
the exception handlers of the application."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..faults import Conflict, NotFound, RewardConflict, StoreUnavailable


def error_response(status: int, message: str, headers=None, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


async def http_error(request, exc: StarletteHTTPException):
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


#: An error body names at most this many problems, each field name cut to an excerpt:
#: a 60 KB unknown key is never echoed back whole.
SHOWN_ERRORS, EXCERPT = 5, 40


def _excerpt(part) -> str | int:
    if isinstance(part, int):
        return part
    text = str(part)
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


async def invalid(request, exc: RequestValidationError):
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(_excerpt(p)) for p in first.get("loc", []) if p != "body")
    detail = [{"loc": [_excerpt(p) for p in e.get("loc", [])], "msg": str(e.get("msg"))[:200],
               "type": e.get("type")} for e in errors[:SHOWN_ERRORS]]
    return JSONResponse({"error": f"{where or 'request'}: {str(first.get('msg'))[:200]}",
                         "detail": detail, "errors": len(errors)}, status_code=422)


async def studio_error(request, exc: ValueError):
    """Bad input from the studio or a library (``USER_ERRORS``), and what the service
    refuses: 404, 409 (a conflicting reward names both values), 503 + Retry-After, else 422."""
    if isinstance(exc, StoreUnavailable):
        return error_response(503, str(exc), headers=request.app.state.retry_after)
    if isinstance(exc, RewardConflict):
        return error_response(409, str(exc), event_id=exc.event_id,
                              recorded=exc.recorded, received=exc.received)
    status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 422
    return error_response(status, str(exc))
