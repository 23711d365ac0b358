"""Keep session ids out of the logs.

An anonymous session's id is the only key to its conversation, and access logs print
request paths in full (/api/session/<id>/messages, /chat?session=<id>). This filter,
attached to every handler in settings.LOGGING, shortens anything shaped like a session
id before a record is written.
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
