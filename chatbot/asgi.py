"""The ASGI application the production server runs (the Procfile's uvicorn command)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler

from conversations.bodylimits import ASGIBodyLimit

# Idle request threads kept for the next requests; more than this many finished at once
# are let go. Each costs a stack, and nothing else between requests.
MAX_IDLE_REQUEST_THREADS = 64


class ReusedThreadASGIHandler(ASGIHandler):
    """Django's ASGI handler, taking each request's thread from the ones that are idle.

    Django runs a request's synchronous code (middleware, ORM calls) on a thread of its
    own, so that thread-bound state such as a database connection is never used by two
    requests at once. The stock handler starts that thread for every request, and
    another to join it afterwards: about 1 ms a request on the benchmark machine
    (py-spy), a tenth of a chat turn. Here a finished request's thread waits for the next
    request instead. The guarantee is unchanged: one request at a time on a thread.
    """

    def __init__(self):
        super().__init__()
        self.idle_threads: list[ThreadPoolExecutor] = []  # touched only on the event loop

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)
        thread = self.idle_threads.pop() if self.idle_threads else ThreadPoolExecutor(1, "request")
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            if len(self.idle_threads) < MAX_IDLE_REQUEST_THREADS:
                self.idle_threads.append(thread)
            else:
                thread.shutdown(wait=False)


os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
django.setup(set_prefix=False)
# Bodies are limited before Django buffers them (see conversations/bodylimits.py).
application = ASGIBodyLimit(ReusedThreadASGIHandler())
