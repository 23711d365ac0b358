"""Response headers for the pages this app serves (``/chat`` and the demo pages).

* ``Content-Security-Policy``: scripts and styles only from our own files, never
  inline, so a message that slipped past escaping still could not run; the page may
  only talk to its own API.
* ``frame-ancestors``: ``/chat`` may be framed by the sites in
  ``CHATBOT_ALLOWED_ORIGINS`` (and by our own pages), nothing else may be framed at all.
  Browsers that know ``frame-ancestors`` ignore ``X-Frame-Options``; the framable page
  is exempt from the site-wide ``DENY`` so that the older ones do not block it.
* ``Referrer-Policy: no-referrer``: ``/chat?session=<id>`` carries the session id, the
  only key to an anonymous conversation; no request from the page, to us or to a link
  in a reply, may repeat it in a ``Referer`` header.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from django.conf import settings


def own_sources() -> str:
    """'self', plus the static files' origin when they are served from a CDN."""
    static = urlsplit(settings.STATIC_URL)
    if static.scheme and static.netloc:
        return f"'self' {static.scheme}://{static.netloc}"
    return "'self'"


def content_security_policy(*, frame_ancestors: list[str], frame_src: str = "'none'") -> str:
    sources = own_sources()
    directives = {
        "default-src": "'none'",
        "script-src": sources,
        "style-src": sources,
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "frame-src": frame_src,
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": " ".join(frame_ancestors) or "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def page_headers(*, framable: bool = False, frame_src: str = "'none'"):
    """Decorate a view that renders one of our HTML pages.

    ``framable`` lets the allowlisted origins frame it; ``frame_src`` names what the
    page itself may frame.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            # The allowlist is read per response, so an operator's change (or a test's
            # override) applies without re-importing the views.
            ancestors = ["'self'", *settings.CHATBOT_ALLOWED_ORIGINS] if framable else []
            response["Content-Security-Policy"] = content_security_policy(
                frame_ancestors=ancestors, frame_src=frame_src
            )
            response["Referrer-Policy"] = "no-referrer"
            if framable:
                response.xframe_options_exempt = True
            return response

        return wrapped

    return decorator
