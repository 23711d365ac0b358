"""Turns in flight in this process: their bound, their tasks, their shutdown.

A turn's answer is awaited in an asyncio task of its own, not in the request that asked
for it: when the visitor goes away mid-answer only the reading stops, and the turn is
still stored. Under ASGI that task runs on the server's event loop; under the
development server (WSGI) on one background loop. At most
``CHATBOT_MAX_TURNS_IN_FLIGHT`` turns are admitted at once; the next is refused with
``Busy`` rather than queued where nobody sees it wait. A graceful shutdown waits for the
tasks still running (``drain``).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.db import connection

from conversations.errors import is_domain_error
from conversations.exceptions import Busy

logger = logging.getLogger(__name__)


class Admissions:
    """A count of admitted turns, safe to change from any thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self.count = 0

    def admit(self) -> Admission:
        with self._lock:
            if self.count >= settings.CHATBOT_MAX_TURNS_IN_FLIGHT:
                raise Busy(retry_after=settings.CHATBOT_BUSY_RETRY_AFTER)
            self.count += 1
        return Admission(self)

    def _release(self) -> None:
        with self._lock:
            self.count -= 1


class Admission:
    """One admitted turn's place, given back once: by the request if the turn never
    started, else by the turn when it ends."""

    def __init__(self, admissions: Admissions):
        self._admissions = admissions
        self.released = False
        self.handed_to_turn = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._admissions._release()


admissions = Admissions()
ADMISSION_KEY = "chatbot.admission"  # where TurnAdmission puts it in the ASGI scope


def admission_for(request) -> Admission:
    """The turn's admission: taken when the request arrived (``TurnAdmission``, under
    ASGI), or now (the development server)."""
    return getattr(request, "scope", {}).get(ADMISSION_KEY) or admissions.admit()


class TurnAdmission:
    """ASGI middleware: a chat turn is admitted, or refused as busy, the moment it
    arrives, before it waits for anything (a request thread, the database). Under load
    the wait for a request thread is the longest; refused after it, a visitor would
    still have waited unseen."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/api/chat":
            return await self.app(scope, receive, send)
        try:
            admission = admissions.admit()
        except Busy as busy:
            return await refuse(scope, send, busy)
        try:
            await self.app({**scope, ADMISSION_KEY: admission}, receive, send)
        finally:
            if not admission.handed_to_turn:
                admission.release()


async def refuse(scope, send, busy: Busy) -> None:
    """503 busy, as the API answers it, with the CORS headers a browser needs to read it."""
    from corsheaders.middleware import CorsMiddleware

    from conversations.errors import api_error_for

    error = api_error_for(busy)
    body = json.dumps(error.body(), separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    headers.append((b"cache-control", b"private, no-store"))
    origin = dict(scope["headers"]).get(b"origin", b"").decode("latin-1")
    if origin and (
        settings.CORS_ALLOW_ALL_ORIGINS
        or CorsMiddleware(lambda request: None).origin_found_in_white_lists(origin, urlsplit(origin))
    ):
        headers += [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"origin")]
        headers.append((b"access-control-expose-headers", ", ".join(settings.CORS_EXPOSE_HEADERS).encode()))
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# The tasks of turns in flight on this process's loops (kept so they are not collected
# and so shutdown can wait for them), and which task answers which client_message_id.
tasks: set[asyncio.Task] = set()
_answering: dict[tuple, asyncio.Task] = {}

# Where the turns' database steps run when no request thread waits for them: a few
# threads, each with its own connection, which it gives back to the pool after each step.
database_threads = ThreadPoolExecutor(max_workers=settings.CHATBOT_TURN_DB_THREADS, thread_name_prefix="turn-db")


def release_connection() -> None:
    """Give this thread's pooled database connection back now, not when the request ends.

    Held through a long answer, each waiting visitor would take one of the pool's few
    connections from everyone else. Without a pool, a connection is kept as long as
    CONN_MAX_AGE says.
    """
    if connection.in_atomic_block:
        return
    if getattr(connection, "pool", None) is not None:
        connection.close()  # back to the pool
    else:
        connection.close_if_unusable_or_obsolete()


def on_database_thread(function: Callable) -> Callable:
    def step(**kwargs):
        try:
            return function(**kwargs)
        finally:
            release_connection()

    return sync_to_async(step, thread_sensitive=False, executor=database_threads)


def on_request_thread(function: Callable) -> Callable:
    """For a turn whose request thread waits for it (the development server's plain
    turns): its database work stays on that thread and that thread's connection."""
    return sync_to_async(function, thread_sensitive=True)


async def run_admitted(coroutine: Coroutine, *, admission: Admission, answering: tuple | None = None):
    """Await an admitted turn as a task of this loop's (not cancelled with its request);
    its admission ends with it. ``answering``: the (session, client_message_id) it
    answers, so that duplicates in this process wait for it."""
    task = asyncio.current_task()
    tasks.add(task)
    try:
        return await (answer_once(answering, coroutine) if answering else coroutine)
    except Exception as error:
        if not is_domain_error(error):
            # Our bug; logged here because the visitor who would have been told may be gone.
            logger.exception("A turn failed")
        raise
    finally:
        tasks.discard(task)
        admission.release()


def request_loop() -> asyncio.AbstractEventLoop:
    """The ASGI server's event loop, seen from the thread that runs a request's view."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if loop is None:
        raise RuntimeError("Not called from a request served over ASGI")
    return loop


def answering(key: tuple) -> asyncio.Task | None:
    """The task on this loop that is answering ``key`` (session, client_message_id)."""
    task = _answering.get(key)
    if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
        return None
    return task


async def answer_once(key: tuple, coroutine: Coroutine):
    """Await ``coroutine`` as the answer to ``key``, so local duplicates wait for it."""
    _answering[key] = asyncio.current_task()
    try:
        return await coroutine
    finally:
        if _answering.get(key) is asyncio.current_task():
            del _answering[key]


async def drain(timeout: float) -> None:
    """Wait, at most ``timeout`` seconds, for the turns in flight on this loop."""
    pending = [task for task in tasks if task.get_loop() is asyncio.get_running_loop()]
    if not pending:
        return
    logger.info("Waiting for %d turn(s) in flight before shutting down", len(pending))
    _, still_running = await asyncio.wait(pending, timeout=timeout)
    if still_running:
        logger.warning("%d turn(s) still in flight at shutdown were abandoned", len(still_running))


# --- The development server's loop ------------------------------------------------------
_background: asyncio.AbstractEventLoop | None = None
_background_lock = threading.Lock()


def background_loop() -> asyncio.AbstractEventLoop:
    """One event loop in a thread of its own, for streamed turns under WSGI."""
    global _background
    with _background_lock:
        if _background is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="turns", daemon=True).start()
            atexit.register(_drain_background, loop)
            _background = loop
    return _background


def _drain_background(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.run_coroutine_threadsafe(drain(settings.CHATBOT_SHUTDOWN_GRACE_SECONDS), loop).result()
