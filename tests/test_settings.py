"""Configuration: typed environment readers, and production settings that pass Django's
deployment checks.

Settings are read once, when the module is imported, so every test of a configuration
starts a fresh Python process with exactly the environment it names and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from chatbot.env import env_bool, env_float, env_int, env_list, env_str

REPO = Path(__file__).resolve().parent.parent


def production_env(**overrides: str | None) -> dict[str, str]:
    """What an operator sets in production; ``NAME=None`` leaves a variable out."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "chat.example.com",
        "CHATBOT_ALLOWED_ORIGINS": "https://www.example.com,https://example.com",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
        "DATABASE_URL": "sqlite:///:memory:",
        "REDIS_URL": "redis://127.0.0.1:6379/0",  # named, not reached: checks do not connect
    }
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)


def settings_under(env: dict[str, str], *names: str) -> dict:
    script = (
        "import json, django; from django.conf import settings; django.setup(); "
        f"print(json.dumps({{name: getattr(settings, name) for name in {list(names)!r}}}, default=str))"
    )
    result = run(["-c", script], {**env, "DJANGO_SETTINGS_MODULE": "chatbot.settings"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- The typed environment readers -------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "True", "YES", "on", " true "])
def test_env_bool_reads_true(monkeypatch, raw):
    monkeypatch.setenv("CHATBOT_TEST_FLAG", raw)

    assert env_bool("CHATBOT_TEST_FLAG") is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "off", ""])
def test_env_bool_reads_false(monkeypatch, raw):
    monkeypatch.setenv("CHATBOT_TEST_FLAG", raw)

    assert env_bool("CHATBOT_TEST_FLAG", default=True) is False


def test_env_bool_falls_back_to_its_default_when_unset(monkeypatch):
    monkeypatch.delenv("CHATBOT_TEST_FLAG", raising=False)

    assert env_bool("CHATBOT_TEST_FLAG") is False
    assert env_bool("CHATBOT_TEST_FLAG", default=True) is True


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled", "ture"])
def test_env_bool_refuses_anything_else_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("CHATBOT_TEST_FLAG", raw)

    with pytest.raises(ImproperlyConfigured, match="CHATBOT_TEST_FLAG"):
        env_bool("CHATBOT_TEST_FLAG")


def test_env_int_reads_an_integer_or_its_default(monkeypatch):
    monkeypatch.setenv("CHATBOT_TEST_NUMBER", "42")
    monkeypatch.setenv("CHATBOT_TEST_BLANK", "  ")
    monkeypatch.delenv("CHATBOT_TEST_UNSET", raising=False)

    assert env_int("CHATBOT_TEST_NUMBER", 7) == 42
    assert env_int("CHATBOT_TEST_BLANK", 7) == 7
    assert env_int("CHATBOT_TEST_UNSET", 7) == 7


@pytest.mark.parametrize("raw", ["forty", "4.5", "1e3", "0x10"])
def test_env_int_refuses_what_is_not_an_integer_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("CHATBOT_TEST_NUMBER", raw)

    with pytest.raises(ImproperlyConfigured, match="CHATBOT_TEST_NUMBER"):
        env_int("CHATBOT_TEST_NUMBER", 7)


def test_env_int_refuses_a_value_below_its_minimum(monkeypatch):
    monkeypatch.setenv("CHATBOT_TEST_NUMBER", "0")

    assert env_int("CHATBOT_TEST_NUMBER", 7, minimum=0) == 0
    with pytest.raises(ImproperlyConfigured, match="CHATBOT_TEST_NUMBER.*at least 1"):
        env_int("CHATBOT_TEST_NUMBER", 7, minimum=1)


def test_env_float_reads_a_number_or_its_default(monkeypatch):
    monkeypatch.setenv("CHATBOT_TEST_SECONDS", "2.5")
    monkeypatch.delenv("CHATBOT_TEST_UNSET", raising=False)

    assert env_float("CHATBOT_TEST_SECONDS", 1.0) == 2.5
    assert env_float("CHATBOT_TEST_UNSET", 1.0) == 1.0


def test_env_float_refuses_what_is_not_a_number_naming_the_variable(monkeypatch):
    monkeypatch.setenv("CHATBOT_TEST_SECONDS", "soon")

    with pytest.raises(ImproperlyConfigured, match="CHATBOT_TEST_SECONDS"):
        env_float("CHATBOT_TEST_SECONDS", 1.0)


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv("CHATBOT_TEST_LIST", " https://a.example , ,https://b.example,")

    assert env_list("CHATBOT_TEST_LIST") == ["https://a.example", "https://b.example"]


def test_env_list_falls_back_to_a_copy_of_its_default(monkeypatch):
    monkeypatch.delenv("CHATBOT_TEST_LIST", raising=False)
    default = ["localhost"]

    hosts = env_list("CHATBOT_TEST_LIST", default)
    hosts.append("example.com")

    assert default == ["localhost"]
    assert env_list("CHATBOT_TEST_LIST") == []


def test_env_list_set_to_nothing_is_an_empty_list(monkeypatch):
    monkeypatch.setenv("CHATBOT_TEST_LIST", "")

    assert env_list("CHATBOT_TEST_LIST", ["localhost"]) == []


def test_env_str_reads_a_string_or_its_default(monkeypatch):
    monkeypatch.setenv("CHATBOT_TEST_TEXT", "hello")
    monkeypatch.delenv("CHATBOT_TEST_UNSET", raising=False)

    assert env_str("CHATBOT_TEST_TEXT") == "hello"
    assert env_str("CHATBOT_TEST_UNSET", "fallback") == "fallback"


# --- Production settings ------------------------------------------------------------------


def test_production_settings_pass_the_deployment_checks():
    result = check_deploy(production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("overrides", "warning"),
    [
        ({"SECURE_HSTS_PRELOAD": None}, "security.W021"),
        ({"SECURE_HSTS_INCLUDE_SUBDOMAINS": "false"}, "security.W005"),
        ({"SECRET_KEY": "short-and-guessable"}, "security.W009"),
        ({"CHATBOT_ALLOWED_ORIGINS": None}, "widget.W001"),
        ({"REDIS_URL": None}, "conversations.W001"),
    ],
    ids=["no-hsts-preload", "no-hsts-subdomains", "weak-secret-key", "no-allowed-origins", "no-shared-rate-limits"],
)
def test_the_deployment_checks_catch_a_weakened_production_setting(overrides, warning):
    result = check_deploy(production_env(**overrides))

    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def test_postgresql_goes_through_a_pool_with_health_checks_and_a_statement_timeout():
    database = settings_under(production_env(DATABASE_URL="postgres://app@db.internal:5432/chat"), "DATABASES")[
        "DATABASES"
    ]["default"]

    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert database["CONN_HEALTH_CHECKS"] is True
    assert database["CONN_MAX_AGE"] == 0  # the pool keeps the connections, not Django
    assert database["OPTIONS"]["pool"] == {"min_size": 2, "max_size": 10, "timeout": 3.0}
    assert database["OPTIONS"]["options"] == "-c statement_timeout=5000"


def test_without_the_pool_postgresql_connections_persist():
    env = production_env(DATABASE_URL="postgres://app@db.internal:5432/chat", DATABASE_POOL="false")
    database = settings_under(env, "DATABASES")["DATABASES"]["default"]

    assert "pool" not in database["OPTIONS"]
    assert database["CONN_MAX_AGE"] == 600
    assert database["CONN_HEALTH_CHECKS"] is True


def test_production_turns_on_https_only_cookies_and_strict_cors():
    values = settings_under(
        production_env(),
        "DEBUG",
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "ALLOWED_HOSTS",
        "CORS_ALLOW_ALL_ORIGINS",
        "CORS_ALLOWED_ORIGINS",
        "CORS_ALLOW_CREDENTIALS",
    )

    assert values == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "ALLOWED_HOSTS": ["chat.example.com"],
        "CORS_ALLOW_ALL_ORIGINS": False,
        "CORS_ALLOWED_ORIGINS": ["https://www.example.com", "https://example.com"],
        "CORS_ALLOW_CREDENTIALS": False,
    }


def test_production_refuses_to_start_without_a_secret_key():
    result = check_deploy(production_env(SECRET_KEY=None))

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("name", "raw"),
    [("CHATBOT_PAGE_SIZE", "fifty"), ("CHATBOT_SESSION_TTL_DAYS", "0"), ("DEBUG", "perhaps")],
)
def test_a_malformed_variable_stops_start_up_naming_it(name, raw):
    result = check_deploy(production_env(**{name: raw}))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


def test_health_checks_are_answered_over_plain_http_while_everything_else_moves_to_https():
    script = (
        "import django; django.setup(); from django.test import Client; c = Client(); "
        "print(c.get('/healthz').status_code, c.get('/api/sessions/').status_code, "
        "c.get('/api/sessions/')['Location'])"
    )

    result = run(
        ["-c", script],
        production_env(ALLOWED_HOSTS="testserver", DJANGO_SETTINGS_MODULE="chatbot.settings"),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["200", "301", "https://testserver/api/sessions/"]


# --- Development defaults --------------------------------------------------------------


def test_with_nothing_set_it_runs_in_development_mode_with_the_documented_defaults():
    values = settings_under(
        {"PATH": os.environ.get("PATH", "")},
        "DEBUG",
        "CHATBOT_SESSION_TTL_DAYS",
        "CHATBOT_PAGE_SIZE",
        "CHATBOT_PAGE_SIZE_MAX",
        "CHATBOT_SERVER_API_KEY",
    )

    assert values == {
        "DEBUG": True,
        "CHATBOT_SESSION_TTL_DAYS": 30,
        "CHATBOT_PAGE_SIZE": 50,
        "CHATBOT_PAGE_SIZE_MAX": 200,
        "CHATBOT_SERVER_API_KEY": "",
    }


def test_the_chatbot_settings_come_from_the_environment():
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CHATBOT_SESSION_TTL_DAYS": "7",
        "CHATBOT_PAGE_SIZE": "20",
        "CHATBOT_PAGE_SIZE_MAX": "100",
        "CHATBOT_SERVER_API_KEY": "key-from-env",
    }

    values = settings_under(
        env, "CHATBOT_SESSION_TTL_DAYS", "CHATBOT_PAGE_SIZE", "CHATBOT_PAGE_SIZE_MAX", "CHATBOT_SERVER_API_KEY"
    )

    assert values == {
        "CHATBOT_SESSION_TTL_DAYS": 7,
        "CHATBOT_PAGE_SIZE": 20,
        "CHATBOT_PAGE_SIZE_MAX": 100,
        "CHATBOT_SERVER_API_KEY": "key-from-env",
    }


def test_env_example_lists_every_variable_the_settings_read():
    read = set(
        re.findall(
            r"\benv_(?:str|bool|int|float|list)\(\s*[\"']([A-Z0-9_]+)[\"']",
            (REPO / "chatbot" / "settings.py").read_text(),
        )
    )
    example = REPO / ".env.example"

    assert example.exists(), ".env.example is missing"
    listed = set(re.findall(r"^\s*#?\s*([A-Z][A-Z0-9_]*)=", example.read_text(), re.M))
    assert read
    assert sorted(read - listed) == []


def test_link_hosts_are_read_lower_case():
    read = settings_under(
        production_env(CHATBOT_LINK_HOSTS="Docs.Example.com, help.example.com:8443"), "CHATBOT_LINK_HOSTS"
    )

    assert read == {"CHATBOT_LINK_HOSTS": ["docs.example.com", "help.example.com:8443"]}


@pytest.mark.parametrize("value", ["https://docs.example.com", "docs.example.com/path", "docs example"])
def test_a_link_host_that_is_not_a_host_stops_the_app_naming_the_variable(value):
    result = run(["manage.py", "check"], production_env(CHATBOT_LINK_HOSTS=value))

    assert result.returncode != 0
    assert "CHATBOT_LINK_HOSTS" in result.stderr
