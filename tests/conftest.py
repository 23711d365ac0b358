"""Fixtures shared by the whole suite.

The suite runs against whichever database DATABASE_URL names (SQLite by default,
PostgreSQL in CI's second pass); tests that only make sense on one of them say so with
the ``postgres`` marker or the ``on_postgres`` fixture.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from bench.server import ProductionServer
from tests.fake_openai import FakeOpenAI
from tests.servers import RedisServer, asgi_server, collect_static, test_database_url


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Each test starts with no requests counted against the rate limits."""
    cache.clear()


@pytest.fixture
def api():
    """An anonymous API client: what a visitor's browser is to the server."""
    return APIClient()


@pytest.fixture
def staff_api(django_user_model):
    client = APIClient()
    client.force_login(django_user_model.objects.create_user("staff", password="pw", is_staff=True))
    return client


@pytest.fixture
def staff_client(django_user_model):
    """A staff member who may look at chat sessions, and do nothing else in the admin."""
    user = django_user_model.objects.create_user("support", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_session", content_type__app_label="conversations"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def responder_client(django_user_model):
    """A staff member who may change chat sessions: take them over, reply, hand them back."""
    user = django_user_model.objects.create_user(
        "responder", password="pw", is_staff=True, first_name="Rita", last_name="Responder"
    )
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_session", "change_session"], content_type__app_label="conversations"
        )
    )
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture(scope="session")
def fake_openai_server():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(fake_openai_server, settings):
    """Point the app at the fake OpenAI server, through the real SDK.

    Retries are off so that each failure mode shows in one request; the timeout is
    short so the timeout case is quick.
    """
    fake_openai_server.reset()
    settings.OPENAI_API_KEY = "sk-test"
    settings.CHATBOT_MODEL_BACKEND = "conversations.llm.OpenAIChatModel"
    settings.OPENAI_BASE_URL = fake_openai_server.base_url
    settings.CHAT_MODEL = "fake-model"
    settings.OPENAI_TIMEOUT = 1.0
    settings.OPENAI_MAX_RETRIES = 0
    return fake_openai_server


@pytest.fixture(scope="session")
def uvicorn_url(django_db_setup, fake_openai_server):
    """The production ASGI server (uvicorn, two workers) on this run's test database,
    answering through the fake model. Tests using it need ``transactional_db``."""
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai_server.base_url, "OPENAI_MAX_RETRIES": "0"}
    env |= {"OPENAI_TIMEOUT": "2", "CHAT_MODEL": "fake-model"}
    with asgi_server(env, workers=2) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def live_redis():
    """A Redis of the run's own for the live feeds' pub/sub (see ``live_url``)."""
    require(shutil.which("redis-server") is not None, "redis-server")
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_url(django_db_setup, fake_openai_server, live_redis):
    """uvicorn (two workers) with live feeds through ``live_redis``, a heartbeat every
    half second, http://customer.example as the one allowed origin, answering through
    the fake model. Tests using it need ``transactional_db``; with ``live_hub`` what the
    test itself stores reaches its feeds too."""
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake_openai_server.base_url, "OPENAI_MAX_RETRIES": "0"}
    env |= {"OPENAI_TIMEOUT": "2", "CHAT_MODEL": "fake-model", "REDIS_URL": live_redis.url}
    env |= {"CHATBOT_LIVE_HEARTBEAT_SECONDS": "0.5", "CHATBOT_ALLOWED_ORIGINS": "http://customer.example"}
    with asgi_server(env, workers=2) as base_url:
        yield base_url


@pytest.fixture
def live_hub(live_redis, settings):
    """Publish this test's own changes (a staff member's, made through the services) to
    the feeds of ``live_url``, as another instance would."""
    settings.REDIS_URL = live_redis.url


def require(available: bool, what: str) -> None:
    """Skip a test whose prerequisite is missing, except in CI, where that is a failure."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available")


@pytest.fixture
def redis_server():
    """A real Redis of this test's own, which the test may stop and restart."""
    require(shutil.which("redis-server") is not None, "redis-server")
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_cache(redis_server, settings):
    """Point the app's cache (and so its rate limits) at ``redis_server``."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url,
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
        }
    }
    return redis_server


@pytest.fixture(scope="session")
def static_root(tmp_path_factory):
    """collectstatic's output, once per test process, for production servers to serve."""
    return collect_static(tmp_path_factory.mktemp("static"))


@pytest.fixture
def production_instances(transactional_db, redis_server, static_root, tmp_path):
    """Start instances of the production server: the Procfile's web command, one worker
    each, on this run's PostgreSQL database, one Redis and one secret key, serving
    collectstatic's files; all stopped after the test.

    ``start(count, **env)`` returns their base URLs; ``start.servers`` are the
    ``ProductionServer`` objects, oldest first. ``transactional_db``: the servers see
    only committed rows, and the test reads theirs. Skipped on SQLite (CI runs the suite
    again on PostgreSQL, where it must pass).
    """
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL); CI's PostgreSQL pass runs it")
    started: list[ProductionServer] = []

    def start(count: int = 2, **overrides: str) -> list[str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("OPENAI_", "CHATBOT_"))}
        env |= {
            "DJANGO_SETTINGS_MODULE": "chatbot.settings",
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": redis_server.url,
            "DEBUG": "false",
            "SECRET_KEY": "scale-out-test-secret-key-shared-by-every-instance",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "STATIC_ROOT": str(static_root),
            "LOG_LEVEL": "WARNING",
            **overrides,
        }
        instances = [
            ProductionServer(env=env, workers=1, log_path=tmp_path / f"instance-{len(started) + i}.log")
            for i in range(count)
        ]
        started.extend(instances)
        for instance in instances:
            instance.launch()
        for instance in instances:
            instance.wait_ready(timeout=20)
        return [instance.base_url for instance in instances]

    start.servers = started  # to signal them: SIGTERM, SIGKILL
    yield start
    for instance in started:
        instance.stop(timeout=10)


@pytest.fixture
def on_postgres(db):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL); CI runs this file on it")


@pytest.fixture
def member(django_user_model):
    """A signed-in customer without staff rights: owns the sessions they start, sees only those."""
    return django_user_model.objects.create_user("member", password="pw")


@pytest.fixture
def member_api(member):
    client = APIClient()
    client.force_login(member)
    return client
