"""The model backend contract (conversations/llm.py), run against every backend.

No test here may use the database: pytest-django refuses any query, so a backend that
touched it would fail the contract.
"""

from __future__ import annotations

import asyncio

import pytest
from django.utils.module_loading import import_string

from conversations.llm import ChatModel, ModelError, ModelFailure, OpenAIChatModel, Reply, chat_model

BACKENDS = ["conversations.llm.OfflineChatModel", "conversations.llm.OpenAIChatModel"]
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]


@pytest.fixture(params=BACKENDS)
def backend(request, fake_llm, settings) -> ChatModel:
    """Each backend as ``CHATBOT_MODEL_BACKEND`` names it; the OpenAI one talks to the fake."""
    settings.CHATBOT_MODEL_BACKEND = request.param
    return chat_model()


def run(coroutine):
    return asyncio.run(coroutine)


def test_the_setting_names_the_backend_by_dotted_path(backend, settings):
    assert isinstance(backend, import_string(settings.CHATBOT_MODEL_BACKEND))
    assert chat_model() is backend  # built once per configuration


def test_complete_returns_a_whole_reply_with_its_provenance(backend):
    reply = run(backend.complete(MESSAGES))

    assert isinstance(reply, Reply)
    assert reply.text.strip()
    assert reply.metadata["provider"] == backend.provider
    assert reply.metadata["model"]
    assert reply.metadata["latency_ms"] >= 0
    assert reply.metadata["finish_reason"] == "stop"


def test_stream_hands_over_pieces_that_add_up_to_the_reply(backend):
    pieces: list[str] = []

    reply = run(backend.stream(MESSAGES, pieces.append))

    assert len(pieces) > 1
    assert "".join(pieces) == reply.text
    assert reply.text == run(backend.complete(MESSAGES)).text


def test_an_exception_in_the_callers_callback_is_not_relabelled_as_the_models(backend):
    class OurBug(Exception):
        pass

    def on_delta(text):
        raise OurBug(text)

    with pytest.raises(OurBug):
        run(backend.stream(MESSAGES, on_delta))


def test_the_answer_is_awaited_on_the_event_loop_so_many_wait_at_once(backend, fake_llm):
    """Ten answers at once on one loop and no threads: all in flight together upstream."""
    fake_llm.reset(delay=0.3)

    async def ten_at_once():
        return await asyncio.gather(*(backend.complete(MESSAGES) for _ in range(10)))

    replies = run(ten_at_once())

    assert len(replies) == 10
    if isinstance(backend, OpenAIChatModel):
        assert fake_llm.max_in_flight == 10


BOTH, STREAMED, WHOLE = (False, True), (True,), (False,)
FAILURES = [  # what the fake upstream does, the kind of error, for which calls
    (dict(status=500), ModelFailure.ERROR, BOTH),
    (dict(status=429), ModelFailure.RATE_LIMITED, BOTH),
    (dict(delay=2.0), ModelFailure.TIMEOUT, BOTH),
    (dict(garbage=True), ModelFailure.MALFORMED, BOTH),
    (dict(empty=True), ModelFailure.MALFORMED, WHOLE),
    (dict(cut_after_chunks=2), ModelFailure.INCOMPLETE, STREAMED),
    (dict(garbage_after_chunks=2), ModelFailure.MALFORMED, STREAMED),
    (dict(stall_after_chunks=2), ModelFailure.TIMEOUT, STREAMED),
]
CASES = [(behaviour, kind, streamed) for behaviour, kind, modes in FAILURES for streamed in modes]


@pytest.mark.parametrize(
    ("behaviour", "kind", "streamed"),
    CASES,
    ids=[f"{'stream' if streamed else 'complete'}-{next(iter(b))}" for b, _, streamed in CASES],
)
def test_every_upstream_failure_is_a_retryable_model_error_of_its_kind(fake_llm, settings, behaviour, kind, streamed):
    settings.CHATBOT_MODEL_BACKEND = "conversations.llm.OpenAIChatModel"
    fake_llm.reset(**behaviour)
    backend = chat_model()

    with pytest.raises(ModelError) as raised:
        run(backend.stream(MESSAGES, lambda text: None) if streamed else backend.complete(MESSAGES))

    assert raised.value.kind == kind
    assert raised.value.retryable is True


def test_an_unreachable_server_is_unavailable(settings):
    settings.CHATBOT_MODEL_BACKEND = "conversations.llm.OpenAIChatModel"
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    settings.OPENAI_MAX_RETRIES = 0

    with pytest.raises(ModelError) as raised:
        run(chat_model().complete(MESSAGES))

    assert raised.value.kind == ModelFailure.UNAVAILABLE
