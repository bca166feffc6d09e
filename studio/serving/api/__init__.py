"""The selection HTTP API (FastAPI): select, feedback, creatives, arms, health, metrics.

Each process (a replica) keeps its bandit in memory and learns only from the store's
reward log, so any number of replicas — ``studio serve --replicas N`` on one machine, or
processes on several machines behind a load balancer over one PostgreSQL store — serve
and learn as one; ``/healthz`` reports how far the replica is behind the log.
Writes need ``Authorization: Bearer <key>`` (``--api-key`` or ``STUDIO_API_KEY``),
compared in constant time.

Every error is JSON ``{"error": message}`` and keeps the connection open:

- 401 wrong or missing key; 404 unknown product, cluster, event or creative;
- 409 feedback after the event's window, or a second reward for an event with another
  value (the body has ``recorded`` and ``received``; the same value again is 200
  ``duplicate``);
- 413 a body over ``max_body_bytes`` (default 64 KiB; counted as it streams, chunked or not);
- 422 invalid input, the field named: unknown request fields; a ``user`` key that is not
  one of the store audience's columns (named in the error, never processed); a number that
  is not finite or beyond ±1e9; text over 1,000 characters; over 100 interest tags
  (see ``studio.inputs.user_features.check_user_features``);
- 503 + ``Retry-After`` when the store cannot be written (full or read-only disk, I/O
  error): nothing was recorded; the service recovers by itself once writes succeed;
  selections are also refused while the disk has less than ``min_free_bytes`` free;
- 500 an unexpected error (its traceback is logged).

``/healthz`` is liveness (the process answers); ``/readyz`` is readiness: 200 when the store
takes a write and the disk has ``min_free_bytes`` free, else 503 + ``Retry-After``.
``/v1/select`` and ``/v1/feedback`` run in the threadpool, so ``/healthz`` and ``/metrics``
answer while they work. A committed reward is answered 200 even when the snapshot after it
fails (logged; retried on the next reward and every ``maintenance_interval_s``). With
``retention_s``, old events whose rewards are folded into a snapshot are pruned on that
timer (see ``studio.serving.service``).

Layout (FastAPI's "bigger applications"): ``app`` builds the application over a store
(``create_app``) and runs it (``serve``); ``schemas`` holds the request and answer
models; ``routers`` one ``APIRouter`` per group of routes (``selection``: select and
feedback; ``creatives``: creative images and the arms; ``health``: liveness, readiness,
metrics); ``dependencies`` what the routes take from the application (the service, the
store, the metrics, the API-key check); ``middleware`` and ``errors`` turn every answer
into JSON, bounded and counted.
"""

from .app import create_app, serve

__all__ = ["create_app", "serve"]
