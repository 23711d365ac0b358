"""The ASGI application the production server runs (the Procfile's uvicorn command)."""

from __future__ import annotations

import contextvars
import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

# Idle request threads kept for the next requests; more than this many finished at once
# are let go. Each costs a stack, and nothing else between requests.
MAX_IDLE_REQUEST_THREADS = 64

_request_thread: contextvars.ContextVar[ThreadLease] = contextvars.ContextVar("request_thread")


class ThreadLease:
    """A request's hold on one idle thread, given back once, as early as it can be."""

    def __init__(self, handler: ReusedThreadASGIHandler):
        self.handler = handler
        self.thread = handler.idle_threads.pop() if handler.idle_threads else ThreadPoolExecutor(1, "request")
        self.returned = False
        self.kept = False

    def give_back(self) -> None:
        """Offer the thread to the next request (the view has returned)."""
        if not self.returned:
            self.returned = True
            if len(self.handler.idle_threads) < MAX_IDLE_REQUEST_THREADS:
                self.handler.idle_threads.append(self.thread)
                self.kept = True

    def end(self) -> None:
        """The request is over: a thread nobody kept may stop now, not before, since
        closing the response still ran on it."""
        self.give_back()
        if not self.kept:
            self.thread.shutdown(wait=False)


class ReusedThreadASGIHandler(ASGIHandler):
    """Django's ASGI handler, with request threads that are reused and given back early,
    answers that are awaited after the view has returned, and a graceful shutdown.

    Django runs a request's synchronous code (middleware, the view, ORM calls) on a
    thread of its own, so that thread-bound state such as a database connection is never
    used by two requests at once. The stock handler starts that thread for every
    request, and another to join it afterwards. Here a request takes an idle thread and
    gives it back as soon as its view has returned: a chat turn then waits for its
    answer on the event loop alone (``AwaitedResponse``, or a stream), holding no
    thread. What still runs after that (closing the response) is queued on the thread
    behind whatever request holds it next, one at a time, as Django requires.

    On shutdown (ASGI lifespan) it waits for the turns still in flight, whose visitors
    may have gone, so that they are stored.
    """

    def __init__(self):
        super().__init__()
        self.idle_threads: list[ThreadPoolExecutor] = []  # touched only on the event loop

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.lifespan(receive, send)
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        lease = ThreadLease(self)
        token = _request_thread.set(lease)
        try:
            async with ThreadSensitiveContext(executor=lease.thread):
                await self.handle(scope, receive, send)
        finally:
            _request_thread.reset(token)
            lease.end()

    async def run_get_response(self, request):
        response = await super().run_get_response(request)
        _request_thread.get().give_back()
        return response

    async def send_response(self, response, send):
        from conversations.streaming import AwaitedResponse  # needs the apps loaded

        if isinstance(response, AwaitedResponse):
            await response.resolve()
        await super().send_response(response, send)

    async def lifespan(self, receive, send):
        from conversations import inflight

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await inflight.drain(settings.CHATBOT_SHUTDOWN_GRACE_SECONDS)
                await send({"type": "lifespan.shutdown.complete"})
                return


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
django.setup(set_prefix=False)
application = ReusedThreadASGIHandler()
