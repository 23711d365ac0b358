"""Start the app as a real server process, for tests that need one (ASGI streaming,
several instances): the same command production runs, on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.db import connection

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
def asgi_server(env: dict[str, str] | None = None, *, workers: int = 1):
    """Run uvicorn on the ASGI app; yield its base URL; stop it afterwards."""
    port = free_port()
    process_env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CHATBOT_RATELIMIT_ENABLE": "false",
        **(env or {}),
    }
    command = [sys.executable, "-m", "uvicorn", "chatbot.asgi:application", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env=process_env)
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
