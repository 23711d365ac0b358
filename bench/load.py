"""Load generators: ``wrk`` for rates, a raw-socket client for one request at a time.

wrk is written in C and costs the two shared cores far less than any Python client, so
rates and their latencies come from it. Where each request must go to a chosen
session and the count must be exact (history cost, concurrent writers), a minimal
keep-alive HTTP/1.1 client over a socket adds tens of microseconds, the same for every
case compared.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

WRK_SCRIPT = r"""
local ids = {}
local n = 0
local mode = os.getenv("BENCH_MODE")
local counter = 1

function setup(thread)
  thread:set("offset", counter * 7919)
  counter = counter + 1
end

function init(args)
  local path = os.getenv("BENCH_IDS")
  if path and path ~= "" then
    for line in io.lines(path) do ids[#ids + 1] = line end
  end
  n = offset or 0
end

function request()
  if mode == "turn" then
    n = n + 1
    local body = '{"query":"What did we talk about so far?","session_id":"' .. ids[(n % #ids) + 1] .. '"}'
    return wrk.format("POST", "/api/chat", {["Content-Type"] = "application/json"}, body)
  elseif mode == "page" then
    n = n + 1
    return wrk.format("GET", "/api/session/" .. ids[(n % #ids) + 1] .. "/messages?limit=50")
  end
  return wrk.format("GET", nil)
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d,"min_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.min, latency.max))
end
"""


@dataclass
class WrkResult:
    rate: float  # requests per second
    p50_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    requests: int
    errors: int

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str, *, connections: int, seconds: float, mode: str = "get", ids_file: Path | None = None, workdir: Path
) -> WrkResult:
    """Run wrk for ``seconds`` with ``connections`` clients; mode is get, turn or page."""
    script = workdir / "bench.lua"
    script.write_text(WRK_SCRIPT)
    threads = min(2, connections)
    completed = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        env={"BENCH_MODE": mode, "BENCH_IDS": str(ids_file or ""), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    line = next(x for x in completed.stdout.splitlines() if x.startswith("BENCH_RESULT "))
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    return WrkResult(
        rate=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        min_ms=raw["min_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        requests=raw["requests"],
        errors=raw["status_errors"] + raw["socket_errors"],
    )


class HttpError(Exception):
    pass


class RawClient:
    """A keep-alive HTTP/1.1 client on one socket, for Content-Length responses."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        sock = self._connect()
        sock.sendall(head.encode() + b"\r\n" + payload)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        header_block, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = header_block.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        if "content-length" not in headers:
            raise HttpError(f"{method} {path}: response without Content-Length")
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._fill()
        content, self.buffer = self.buffer[:length], self.buffer[length:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, content

    def json(self, method: str, path: str, body: dict | None = None, *, expect: int = 200) -> dict:
        status, content = self.request(method, path, body)
        if status != expect:
            raise HttpError(f"{method} {path}: HTTP {status}: {content[:300]!r}")
        return json.loads(content)

    def timed(self, method: str, path: str, body: dict | None = None, *, expect: int = 200) -> float:
        """Seconds for one request, checked for its status."""
        started = time.perf_counter()
        status, content = self.request(method, path, body)
        elapsed = time.perf_counter() - started
        if status != expect:
            raise HttpError(f"{method} {path}: HTTP {status}: {content[:300]!r}")
        return elapsed

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            self.close()
            raise HttpError("connection closed by the server")
        self.buffer += chunk
