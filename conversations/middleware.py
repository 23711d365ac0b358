"""Middleware of our own: what every answer that can carry a conversation must say."""

from __future__ import annotations

# Every URL whose answer can carry a transcript or a session: /api/session/create,
# /api/session/<id>/messages, /api/sessions/…, /api/chat, /chat?session=<id>.
API_PATHS = ("/api/session", "/api/chat")
PAGE_PATH = "/chat"


class NoStoreConversations:
    """``Cache-Control: private, no-store`` on every answer that can carry a conversation.

    Transcripts are reached by URL, and the URL is the capability: a CDN or proxy told
    to cache everything would otherwise keep them, and hand them to whoever asks for the
    same URL. One place, so a new view cannot forget it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path == PAGE_PATH or request.path.startswith(API_PATHS):
            response["Cache-Control"] = "private, no-store"
        return response
