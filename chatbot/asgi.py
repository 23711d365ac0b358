"""The ASGI application the production server runs (the Procfile's uvicorn command)."""

from __future__ import annotations

import asyncio
import contextvars
import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

from conversations.bodylimits import ASGIBodyLimit

# Request threads per worker: a burst of requests waits on the event loop for one (a
# view's synchronous part takes milliseconds) instead of starting a thread each, whose
# stacks would cost more memory than the answers in flight. All of them are kept idle
# between requests; each costs a stack, and nothing else.
MAX_REQUEST_THREADS = 64

_request_thread: contextvars.ContextVar[ThreadLease] = contextvars.ContextVar("request_thread")


class ThreadLease:
    """A request's hold on one idle thread, given back once, as early as it can be."""

    def __init__(self, handler: ReusedThreadASGIHandler):
        self.handler = handler
        self.thread = handler.idle_threads.pop() if handler.idle_threads else ThreadPoolExecutor(1, "request")
        self.returned = False

    @classmethod
    async def take(cls, handler: ReusedThreadASGIHandler) -> ThreadLease:
        await handler.request_threads.acquire()
        return cls(handler)

    def give_back(self) -> None:
        """Hand the thread to the next request (the view has returned)."""
        if not self.returned:
            self.returned = True
            self.handler.idle_threads.append(self.thread)
            self.handler.request_threads.release()


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
    behind whatever request holds it next, one call at a time, as Django requires: no
    request keeps a transaction or a connection open across two calls.

    On shutdown (ASGI lifespan) it waits for the turns still in flight, whose visitors
    may have gone, so that they are stored.
    """

    def __init__(self):
        super().__init__()
        # The middleware and the view run as Django runs them under WSGI: synchronously,
        # in one call on the request's thread (get_response_async below). The stock
        # async chain would hop between that thread and the event loop at every
        # synchronous middleware, and twice more around a synchronous view; under load
        # each hop waits its turn on a busy loop.
        self.load_middleware(is_async=False)
        self.idle_threads: list[ThreadPoolExecutor] = []  # touched only on the event loop
        self.request_threads = asyncio.Semaphore(MAX_REQUEST_THREADS)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.lifespan(receive, send)
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        lease = await ThreadLease.take(self)
        token = _request_thread.set(lease)
        try:
            async with ThreadSensitiveContext(executor=lease.thread):
                await self.handle(scope, receive, send)
        finally:
            _request_thread.reset(token)
            lease.give_back()

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

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
from conversations.inflight import TurnAdmission  # noqa: E402 - needs the settings

# Bodies are limited before Django buffers them (see conversations/bodylimits.py); chat
# turns are admitted or refused as they arrive (conversations/inflight.py).
application = ASGIBodyLimit(TurnAdmission(ReusedThreadASGIHandler()))
