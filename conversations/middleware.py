"""Run Django's middleware stack in one thread hop.

Under ASGI, Django runs each synchronous-capable middleware (every ``MiddlewareMixin``,
and WhiteNoise, which is synchronous only) through ``sync_to_async`` on both sides of an
async view: about twenty thread switches a request, which the benchmark measured as
most of a request's fixed cost. A synchronous-only middleware at the innermost position
makes Django adapt once: the whole stack runs in the request's own thread (under ASGI
every request has one, for its synchronous work, whether or not this is installed), and
so do the views, the chat view included: it only prepares a turn and hands the rest to a
task on the event loop (``conversations.inflight``), so the thread is free at once.
"""

from __future__ import annotations


class SyncStack:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)


# Every URL whose answer can carry a transcript or a session: /api/session/create,
# /api/session/<id>/messages, /api/sessions/…, /api/chat, /chat?session=<id>.
API_PATHS = ("/api/session", "/api/chat")
PAGE_PATH = "/chat"


class NoStoreConversations:
    """``Cache-Control: private, no-store`` on every answer that can carry a conversation.

    Transcripts are reached by URL, and the URL is the capability: a CDN or proxy told
    to cache everything would otherwise keep them, and hand them to whoever asks for the
    same URL. One place, so a new view cannot forget it. Synchronous only, like
    ``SyncStack``, so the stack still runs in one thread hop.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path == PAGE_PATH or request.path.startswith(API_PATHS):
            response["Cache-Control"] = "private, no-store"
        return response
