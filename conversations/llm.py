"""The one seam through which every call to a language model passes.

A model backend is a class named by the dotted path in ``CHATBOT_MODEL_BACKEND`` (as
``SESSION_ENGINE`` names a session backend), built once per process by
``chat_model()``. Its contract, which ``tests/test_model_backends.py`` runs against
every backend:

* ``async complete(messages, sources=()) -> Reply`` answers whole; ``async
  stream(messages, on_delta, sources=()) -> Reply`` calls ``on_delta(text)`` with each
  piece as it arrives, then returns the whole ``Reply``. Both are awaited on the event
  loop and hold no thread while they wait. ``sources`` are the knowledge base's
  passages that the prompt numbers [1]…[n] (``conversations.grounding``); a backend
  that reads the prompt may ignore them.
* Both either return a complete reply or raise ``ModelError``: a reply that is empty,
  malformed or cut off mid-stream is an error, never a partial answer, so a caller
  stores a turn only after the model returned and nothing when it raised.
* An exception raised by ``on_delta`` (the caller's own code) propagates unchanged:
  it is a bug on our side, never relabelled as the model's failure.
* Neither touches the database, so nothing here runs inside a transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import httpx
import openai
from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class ModelFailure(StrEnum):
    """How a model call failed. Every kind is worth retrying: none is the visitor's fault."""

    UNAVAILABLE = "upstream_unavailable"  # refused or unreachable
    TIMEOUT = "upstream_timeout"  # no answer, or a stall, past the timeout
    RATE_LIMITED = "upstream_rate_limited"
    ERROR = "upstream_error"  # an HTTP error status
    MALFORMED = "upstream_malformed"  # a reply that could not be read, or had no text
    INCOMPLETE = "upstream_incomplete"  # cut off before it finished


class ModelError(Exception):
    """The model gave no usable reply; nothing of it may be stored."""

    def __init__(self, message: str, *, kind: ModelFailure = ModelFailure.ERROR, retryable: bool = True):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.retryable = retryable


@dataclass
class Reply:
    text: str
    citations: list = field(default_factory=list)
    # provider, model, usage (when reported), latency_ms, finish_reason, offline
    metadata: dict = field(default_factory=dict)


class ChatModel:
    """Base class of model backends; see the module docstring for the contract."""

    provider = ""

    @classmethod
    def from_settings(cls) -> ChatModel:
        return cls()

    async def complete(self, messages: list[dict], sources: Sequence = ()) -> Reply:
        raise NotImplementedError

    async def stream(self, messages: list[dict], on_delta: Callable[[str], None], sources: Sequence = ()) -> Reply:
        raise NotImplementedError


class OfflineChatModel(ChatModel):
    """Answers instantly and deterministically, with no network and no key.

    For trying the product and for benchmarks; every reply says it is offline, in its
    text and in its metadata, so nobody mistakes it for a model. Given passages of the
    knowledge base it answers extractively: the best sentence of each of the top ones,
    cited, so the default install already answers from the site's pages.
    """

    provider = "offline"
    model = "offline-responder"
    QUOTED_PASSAGES = 3

    async def complete(self, messages: list[dict], sources: Sequence = ()) -> Reply:
        return self._reply(messages, sources)

    async def stream(self, messages: list[dict], on_delta: Callable[[str], None], sources: Sequence = ()) -> Reply:
        reply = self._reply(messages, sources)
        words = reply.text.split(" ")
        for index, word in enumerate(words):
            on_delta(word if index == len(words) - 1 else word + " ")
        return reply

    def _reply(self, messages: list[dict], sources: Sequence) -> Reply:
        started = time.perf_counter()
        text = self._quote(sources) if sources else self._echo(messages)
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

    def _quote(self, sources: Sequence) -> str:
        quotes = [f"- {hit.snippet} [{n}]" for n, hit in enumerate(sources[: self.QUOTED_PASSAGES], start=1)]
        return (
            "**Offline responder** (no model is configured). This site's pages say:\n\n"
            + "\n".join(quotes)
            + "\n\nSet `OPENAI_API_KEY` to get written answers."
        )

    def _echo(self, messages: list[dict]) -> str:
        earlier = sum(1 for m in messages[:-1] if m["role"] in ("user", "assistant"))
        query = messages[-1]["content"] if messages else ""
        preview = " ".join(query.split())[:200]
        return (
            f"**Offline responder** (no model is configured). You said: {preview}\n\n"
            f"I can see {earlier} earlier message{'s' if earlier != 1 else ''} of this "
            "conversation. Set `OPENAI_API_KEY` to get real answers."
        )


class OpenAIChatModel(ChatModel):
    """Chat Completions through the official async SDK, for OpenAI or a compatible server.

    httpx binds its connection pool to the event loop that first uses it, so each loop
    (one per server process; the development server's one background loop) gets its own
    client, sized for thousands of concurrent streams.
    """

    provider = "openai"

    def __init__(self, *, api_key: str, base_url: str, model: str, timeout: float, max_retries: int):
        self.model = model
        self._client_options = {
            "api_key": api_key,
            "base_url": base_url or None,
            "timeout": timeout,
            "max_retries": max_retries,
        }
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @classmethod
    def from_settings(cls) -> OpenAIChatModel:
        return cls(
            api_key=settings.OPENAI_API_KEY,
            base_url=settings.OPENAI_BASE_URL,
            model=settings.CHAT_MODEL,
            timeout=settings.OPENAI_TIMEOUT,
            max_retries=settings.OPENAI_MAX_RETRIES,
        )

    @property
    def client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            limits = httpx.Limits(
                max_connections=settings.CHATBOT_MAX_TURNS_IN_FLIGHT,
                max_keepalive_connections=min(settings.CHATBOT_MAX_TURNS_IN_FLIGHT, 100),
            )
            http_client = openai.DefaultAsyncHttpxClient(limits=limits)
            client = self._clients[loop] = openai.AsyncOpenAI(**self._client_options, http_client=http_client)
        return client

    async def complete(self, messages: list[dict], sources: Sequence = ()) -> Reply:
        started = time.perf_counter()
        with translated_errors():
            completion = await self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                max_tokens=settings.CHATBOT_REPLY_MAX_TOKENS,
            )
        choices = getattr(completion, "choices", None)
        if not choices or choices[0].message is None or not choices[0].message.content:
            raise ModelError("The model's reply had no content.", kind=ModelFailure.MALFORMED)
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

    async def stream(self, messages: list[dict], on_delta: Callable[[str], None], sources: Sequence = ()) -> Reply:
        started = time.perf_counter()
        state = _StreamState(model=self.model)
        # on_delta runs here, outside translated_errors: its exceptions are ours.
        async for delta in self._deltas(messages, state):
            on_delta(delta)
        if not state.chunks_read:  # a 200 whose body was not an event stream at all
            raise ModelError("The model's reply could not be read.", kind=ModelFailure.MALFORMED)
        if state.finish_reason is None:
            raise ModelError("The model's reply was cut off.", kind=ModelFailure.INCOMPLETE)
        if not state.parts:
            raise ModelError("The model's reply had no content.", kind=ModelFailure.MALFORMED)
        return Reply(
            text="".join(state.parts),
            citations=state.citations,
            metadata=self._metadata(
                model=state.model, usage=state.usage, finish_reason=state.finish_reason, started=started
            ),
        )

    async def _deltas(self, messages: list[dict], state: _StreamState) -> AsyncIterator[str]:
        with translated_errors():
            chunks = await self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                max_tokens=settings.CHATBOT_REPLY_MAX_TOKENS,
                stream=True,
                stream_options={"include_usage": True},
            )
            async with chunks:
                async for chunk in chunks:
                    state.chunks_read += 1
                    state.model = getattr(chunk, "model", None) or state.model
                    state.citations = citations_of(chunk) or state.citations
                    if getattr(chunk, "usage", None):
                        state.usage = chunk.usage.model_dump()
                    for choice in chunk.choices or []:
                        delta = choice.delta.content if choice.delta else None
                        if choice.finish_reason:
                            state.finish_reason = choice.finish_reason
                        if delta:
                            state.parts.append(delta)
                            yield delta

    def _metadata(self, *, model, usage, finish_reason, started) -> dict:
        return {
            "provider": self.provider,
            "model": model,
            "usage": usage,
            "finish_reason": finish_reason,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }


@dataclass
class _StreamState:
    model: str
    parts: list[str] = field(default_factory=list)
    chunks_read: int = 0
    finish_reason: str | None = None
    usage: dict | None = None
    citations: list = field(default_factory=list)


def citations_of(response) -> list:
    """Citations, for the OpenAI-compatible servers that add them (e.g. Perplexity)."""
    extra = getattr(response, "model_extra", None) or {}
    citations = extra.get("citations")
    return list(citations) if isinstance(citations, list) else []


class translated_errors:  # noqa: N801 - used as a context manager, reads as a phrase
    """Turn the SDK's exceptions, and an unreadable response body, into ``ModelError``.

    Only failures that come from the far side are translated; any other exception is a
    bug of ours and passes through untouched.
    """

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, ModelError):
            return False
        if isinstance(exc, openai.APITimeoutError):
            raise ModelError("The model did not answer in time.", kind=ModelFailure.TIMEOUT) from exc
        if isinstance(exc, openai.APIConnectionError):
            raise ModelError("The model could not be reached.", kind=ModelFailure.UNAVAILABLE) from exc
        if isinstance(exc, openai.RateLimitError):
            raise ModelError("The model is rate-limiting us.", kind=ModelFailure.RATE_LIMITED) from exc
        if isinstance(exc, openai.APIStatusError):
            raise ModelError(f"The model answered HTTP {exc.status_code}.", kind=ModelFailure.ERROR) from exc
        # Mid-stream the SDK has already returned, so the HTTP client's own errors arrive
        # untranslated: a stall past the timeout, or the connection dropping.
        if isinstance(exc, httpx.TimeoutException):
            raise ModelError("The model stopped answering in time.", kind=ModelFailure.TIMEOUT) from exc
        if isinstance(exc, httpx.TransportError):
            raise ModelError("The model's reply was cut off.", kind=ModelFailure.INCOMPLETE) from exc
        if isinstance(exc, ValueError | openai.APIResponseValidationError):
            # A body or a chunk that is not JSON (json's errors are ValueErrors).
            logger.warning("Unreadable reply from the model: %r", exc)
            raise ModelError("The model's reply could not be read.", kind=ModelFailure.MALFORMED) from exc
        return False


_backends: dict[tuple, ChatModel] = {}


def chat_model() -> ChatModel:
    """The configured backend, built once per configuration: SDK clients pool their
    connections, and the settings only change in tests."""
    key = (
        settings.CHATBOT_MODEL_BACKEND,
        settings.OPENAI_API_KEY,
        settings.OPENAI_BASE_URL,
        settings.CHAT_MODEL,
        settings.OPENAI_TIMEOUT,
        settings.OPENAI_MAX_RETRIES,
    )
    backend = _backends.get(key)
    if backend is None:
        backend = _backends[key] = import_string(settings.CHATBOT_MODEL_BACKEND).from_settings()
    return backend
