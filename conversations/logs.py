"""Keep session ids out of the logs.

An anonymous session's id is the only key to its conversation, and access logs print
request paths in full (/api/session/<id>/messages, /chat?session=<id>), as the client
spelled them (percent-encoded, too). Every handler in settings.LOGGING has this filter,
which shortens every id in a record's message, and this formatter, which does the same
to the whole line it writes (tracebacks included), before anything is written.
"""

from __future__ import annotations

import logging

from conversations.ids import redact


class RedactSessionIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
