"""Start and stop the production server exactly as the Procfile's ``web`` line runs it.

Used by the benchmark and by tests/test_scale_out.py, so both measure and test the
command that is deployed, not a look-alike. The only change is the address: the
Procfile binds every interface, these bind loopback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROCFILE = REPO / "Procfile"


def procfile_command(process: str = "web") -> str:
    for line in PROCFILE.read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return command.strip()
    raise LookupError(f"Procfile has no {process!r} process")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProductionServer:
    """One instance of the Procfile's web process on 127.0.0.1:``port``.

    ``env`` is the whole environment the server sees (plus PORT and WEB_CONCURRENCY);
    its output goes to ``log_path``.
    """

    def __init__(self, *, env: dict[str, str], port: int | None = None, workers: int = 2, log_path: Path):
        self.port = port or free_port()
        self.workers = workers
        self.log_path = log_path
        self.env = {
            **env,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            # The venv's uvicorn, whichever way the caller was started.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.environ.get('PATH', ''))}",
        }
        self.command = procfile_command().replace("--host 0.0.0.0", "--host 127.0.0.1")
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 30.0) -> ProductionServer:
        """Launch, and return once /healthz answers 200."""
        self.launch()
        self.wait_ready(timeout=timeout)
        return self

    def launch(self) -> None:
        """Start the process without waiting, so several instances boot side by side."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["bash", "-c", f"exec {self.command}"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends the workers too
            )

    def wait_ready(self, *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not answer /healthz within {timeout:.0f} s; see {self.log_path}")

    def signal(self, number: int) -> None:
        """Send ``number`` (SIGTERM, SIGKILL…) to the server and its workers."""
        os.killpg(self.process.pid, number)

    def stop(self, *, timeout: float = 35.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def __enter__(self) -> ProductionServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
