"""The one seam through which every call to a language model passes.

Contract of a ``ChatModel``:

* ``complete(messages)`` returns a whole ``Reply``; ``stream(messages, on_delta)`` calls
  ``on_delta`` with each piece of text as it arrives and returns the whole ``Reply``.
* Both either return a complete reply or raise ``ModelError``: a reply that is empty,
  malformed or cut off mid-stream is an error, never a partial answer. Callers can
  therefore write a turn only after the model returned, and write nothing if it raised.
* Neither touches the database, so nothing here may run inside a transaction.

``chat_model()`` picks the implementation from settings: the OpenAI SDK (talking to
OpenAI or any compatible server) when ``OPENAI_API_KEY`` is set, the offline responder
otherwise.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import openai
from django.conf import settings

logger = logging.getLogger(__name__)


class ModelError(Exception):
    """The model gave no usable reply. ``status`` is what our client should see."""

    def __init__(self, message: str, *, code: str = "upstream_error", status: int = 502):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


@dataclass
class Reply:
    text: str
    citations: list = field(default_factory=list)
    # provider, model, usage (when reported), latency_ms, finish_reason, offline
    metadata: dict = field(default_factory=dict)


class ChatModel:
    provider = ""

    def complete(self, messages: list[dict]) -> Reply:
        raise NotImplementedError

    def stream(self, messages: list[dict], on_delta: Callable[[str], None]) -> Reply:
        raise NotImplementedError


class OfflineChatModel(ChatModel):
    """Answers instantly and deterministically, with no network and no key.

    For trying the product and for benchmarks; every reply says it is offline, in its
    text and in its metadata, so nobody mistakes it for a model.
    """

    provider = "offline"
    model = "offline-responder"

    def complete(self, messages: list[dict]) -> Reply:
        started = time.perf_counter()
        earlier = sum(1 for m in messages[:-1] if m["role"] in ("user", "assistant"))
        query = messages[-1]["content"] if messages else ""
        preview = " ".join(query.split())[:200]
        text = (
            f"**Offline responder** (no model is configured). You said: {preview}\n\n"
            f"I can see {earlier} earlier message{'s' if earlier != 1 else ''} of this "
            "conversation. Set `OPENAI_API_KEY` to get real answers."
        )
        return Reply(
            text=text,
            metadata={
                "provider": self.provider,
                "model": self.model,
                "offline": True,
                "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                "finish_reason": "stop",
            },
        )

    def stream(self, messages: list[dict], on_delta: Callable[[str], None]) -> Reply:
        reply = self.complete(messages)
        words = reply.text.split(" ")
        for index, word in enumerate(words):
            on_delta(word if index == len(words) - 1 else word + " ")
        return reply


class OpenAIChatModel(ChatModel):
    """Chat Completions through the official SDK, for OpenAI or a compatible server."""

    provider = "openai"

    def __init__(self, *, api_key: str, base_url: str, model: str, timeout: float, max_retries: int):
        self.model = model
        self.client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url or None,
            timeout=timeout,
            max_retries=max_retries,
        )

    def complete(self, messages: list[dict]) -> Reply:
        started = time.perf_counter()
        with translated_errors():
            completion = self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                max_tokens=settings.CHATBOT_REPLY_MAX_TOKENS,
            )
        choices = getattr(completion, "choices", None)
        if not choices or choices[0].message is None or not choices[0].message.content:
            raise ModelError("The model's reply had no content.", code="upstream_malformed")
        return Reply(
            text=choices[0].message.content,
            citations=citations_of(completion),
            metadata=self._metadata(
                model=completion.model,
                usage=completion.usage.model_dump() if completion.usage else None,
                finish_reason=choices[0].finish_reason,
                started=started,
            ),
        )

    def stream(self, messages: list[dict], on_delta: Callable[[str], None]) -> Reply:
        started = time.perf_counter()
        parts: list[str] = []
        finish_reason = None
        usage = None
        model = self.model
        citations: list = []
        chunks_read = 0
        with translated_errors():
            chunks = self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                max_tokens=settings.CHATBOT_REPLY_MAX_TOKENS,
                stream=True,
                stream_options={"include_usage": True},
            )
            with chunks:
                for chunk in chunks:
                    chunks_read += 1
                    model = getattr(chunk, "model", None) or model
                    citations = citations_of(chunk) or citations
                    if getattr(chunk, "usage", None):
                        usage = chunk.usage.model_dump()
                    for choice in chunk.choices or []:
                        delta = choice.delta.content if choice.delta else None
                        if delta:
                            parts.append(delta)
                            on_delta(delta)
                        if choice.finish_reason:
                            finish_reason = choice.finish_reason
        if not chunks_read:  # a 200 whose body was not an event stream at all
            raise ModelError("The model's reply could not be read.", code="upstream_malformed")
        if finish_reason is None:
            raise ModelError("The model's reply was cut off.", code="upstream_incomplete")
        if not parts:
            raise ModelError("The model's reply had no content.", code="upstream_malformed")
        return Reply(
            text="".join(parts),
            citations=citations,
            metadata=self._metadata(model=model, usage=usage, finish_reason=finish_reason, started=started),
        )

    def _metadata(self, *, model, usage, finish_reason, started) -> dict:
        return {
            "provider": self.provider,
            "model": model,
            "usage": usage,
            "finish_reason": finish_reason,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }


def citations_of(response) -> list:
    """Citations, for the OpenAI-compatible servers that add them (e.g. Perplexity)."""
    extra = getattr(response, "model_extra", None) or {}
    citations = extra.get("citations")
    return list(citations) if isinstance(citations, list) else []


class translated_errors:  # noqa: N801 - used as a context manager, reads as a phrase
    """Turn the SDK's exceptions, and a broken response body, into ``ModelError``."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, ModelError):
            return False
        if isinstance(exc, openai.APITimeoutError):
            raise ModelError("The model did not answer in time.", code="upstream_timeout", status=504) from exc
        if isinstance(exc, openai.APIConnectionError):
            raise ModelError("The model could not be reached.", code="upstream_unavailable") from exc
        if isinstance(exc, openai.RateLimitError):
            raise ModelError("The model is rate-limiting us.", code="upstream_rate_limited") from exc
        if isinstance(exc, openai.APIStatusError):
            raise ModelError(f"The model answered HTTP {exc.status_code}.", code="upstream_error") from exc
        # Mid-stream the SDK has already returned, so the HTTP client's own errors arrive
        # untranslated: a stall past the timeout, or the connection dropping.
        if isinstance(exc, httpx.TimeoutException):
            raise ModelError("The model stopped answering in time.", code="upstream_timeout", status=504) from exc
        if isinstance(exc, httpx.TransportError):
            raise ModelError("The model's reply was cut off.", code="upstream_incomplete") from exc
        if isinstance(exc, Exception):
            # A response body that is not JSON or a chunk of the wrong shape: whatever
            # it was, there is no usable reply.
            logger.warning("Unreadable reply from the model: %r", exc)
            raise ModelError("The model's reply could not be read.", code="upstream_malformed") from exc
        return False


def chat_model() -> ChatModel:
    """The configured model; built once per configuration, since SDK clients pool
    their HTTP connections and are safe to share between threads."""
    return _chat_model_for(
        settings.OPENAI_API_KEY,
        settings.OPENAI_BASE_URL,
        settings.CHAT_MODEL,
        settings.OPENAI_TIMEOUT,
        settings.OPENAI_MAX_RETRIES,
    )


@functools.lru_cache(maxsize=4)
def _chat_model_for(api_key, base_url, model, timeout, max_retries) -> ChatModel:
    if not api_key:
        return OfflineChatModel()
    return OpenAIChatModel(api_key=api_key, base_url=base_url, model=model, timeout=timeout, max_retries=max_retries)
