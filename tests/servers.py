"""Start the app as a real server process, for tests that need one (ASGI streaming,
several instances, what reaches the wire and the logs): the same command production
runs, or the development server, on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.db import connection

from bench.server import ProductionServer

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_database_url() -> str:
    """A DATABASE_URL for the database this test run uses, so a server process and the
    test see the same rows (with ``transactional_db``, whose writes are committed)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings["USER"] or "postgres"
    return f"postgres://{user}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"


@contextlib.contextmanager
def asgi_server(env: dict[str, str] | None = None, *, workers: int = 1, log_path: Path | None = None):
    """Run uvicorn on the ASGI app; yield its base URL; stop it afterwards.

    With ``log_path`` the access log is on and everything the server prints goes there.
    """
    port = free_port()
    process_env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CHATBOT_RATELIMIT_ENABLE": "false",
        **(env or {}),
    }
    command = [sys.executable, "-m", "uvicorn", "chatbot.asgi:application", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    command += ["--log-level", "info"] if log_path else ["--no-access-log", "--log-level", "warning"]
    with running(command, process_env, port=port, log_path=log_path) as base_url:
        yield base_url


@contextlib.contextmanager
def procfile_server(env: dict[str, str] | None = None, *, log_path: Path):
    """The Procfile's ``web`` command exactly (uvloop, httptools, access log on), one
    worker, in production mode on this run's test database; yield its base URL."""
    process_env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CHATBOT_RATELIMIT_ENABLE": "false",
        "DEBUG": "false",
        "SECRET_KEY": "procfile-server-test-key",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        **(env or {}),
    }
    with ProductionServer(env=process_env, workers=1, log_path=log_path) as server:
        yield server.base_url


@contextlib.contextmanager
def dev_server(env: dict[str, str] | None = None, *, log_path: Path):
    """``manage.py runserver`` as ``./dev.sh serve`` runs it (DEBUG on), on this run's
    test database; everything it prints goes to ``log_path``. Yield its base URL."""
    port = free_port()
    process_env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CHATBOT_RATELIMIT_ENABLE": "false",
        "DEBUG": "true",
        **(env or {}),
    }
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    with running(command, process_env, port=port, log_path=log_path) as base_url:
        yield base_url


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], *, port: int, log_path: Path | None):
    """Start ``command`` (a server on ``port``), yield its base URL once it answers,
    stop it afterwards; its output goes to ``log_path`` when given."""
    output = open(log_path, "wb") if log_path else None  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)  # noqa: S603
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url, process)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if output:
            output.close()


def wait_until_up(base_url: str, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {base_url} did not come up in {timeout} s")


def collect_static(root: Path) -> Path:
    """Run collectstatic as a production deploy does (hashed, compressed) into ``root``."""
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "collectstatic-only", "STATIC_ROOT": str(root)}
    command = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"]
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=120)  # noqa: S603 - our own command
    return root


class RedisServer:
    """A private redis-server on a free port, which a test may stop and start again."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as probe:
                probe.sendall(b"PING\r\n")
                if probe.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class WebhookReceiver:
    """A team's webhook endpoint on a free loopback port: it records every request
    (headers and body) and answers the scripted ``statuses`` in turn, the last one again
    for every later request. With ``hold``, the first answer waits until ``release()``."""

    def __init__(self, statuses: tuple[int, ...] = (200,), *, hold: bool = False):
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answered = 0
        self._released = threading.Event()
        if not hold:
            self._released.set()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._changed:
                    receiver.requests.append((dict(self.headers.items()), body))
                    index = len(receiver.requests) - 1
                    receiver._changed.notify_all()
                if index == 0:
                    receiver._released.wait(timeout=60)
                self.send_response(receiver.statuses[min(index, len(receiver.statuses) - 1)])
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                with receiver._changed:
                    receiver.answered += 1
                    receiver._changed.notify_all()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/chat"

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def release(self) -> None:
        self._released.set()

    def wait_for(self, *, requests: int = 0, answered: int = 0, timeout: float = 30.0) -> None:
        """Block until at least ``requests`` have arrived and ``answered`` were answered."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: len(self.requests) >= requests and self.answered >= answered, timeout=timeout
            )
        if not done:
            raise AssertionError(f"the webhook got {len(self.requests)} request(s), answered {self.answered}")
