"""The one seam for every HTTP request the crawler makes.

The crawler fetches whatever URL staff point it at, from inside our network: a
server-side request forgery surface. So every request, and every redirect hop, goes
through :meth:`Fetcher.get`, which

- allows only ``http`` and ``https``;
- resolves the host once, refuses it if *any* of its addresses is private, loopback,
  link-local, multicast, reserved or unspecified (unless
  ``CHATBOT_KB_ALLOW_PRIVATE_HOSTS``), and then connects to that checked address
  itself, with the original ``Host`` header and TLS server name, so a DNS answer that
  changes between the check and the connection (rebinding) is never used;
- follows redirects by hand, each one only within the site it started on, and checks
  each hop's address again;
- reads the body as a stream and stops past ``CHATBOT_KB_MAX_PAGE_BYTES``;
- gives up after ``CHATBOT_KB_FETCH_TIMEOUT`` seconds in all (httpx's timeouts are per
  read, so a server dripping one byte a second would otherwise never time out);
- sends ``CHATBOT_KB_USER_AGENT`` and, when given, ``If-None-Match`` /
  ``If-Modified-Since``, so an unchanged page costs a 304 and no body.

Environment proxies are ignored: a proxy would resolve the name itself, after our check.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings

MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
_DEFAULT_PORTS = {"http": 80, "https": 443}


class FetchError(Exception):
    """A URL that could not be fetched: unreachable, too slow, too large, malformed."""


class FetchRefused(FetchError):
    """A URL the crawler may not fetch at all: a private address, another site, a scheme
    other than http(s). Never retried."""


@dataclass(frozen=True)
class Response:
    """What a fetch answered. ``url`` is where it ended, after same-site redirects;
    ``not_modified`` means the conditional GET was answered 304 (``body`` is empty)."""

    url: str
    status: int
    body: bytes = b""
    content_type: str = ""
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def gone(self) -> bool:
        """404 Not Found and 410 Gone: the page no longer exists, so it leaves the index."""
        return self.status in (404, 410)


def site_of(url: str) -> tuple[str, int]:
    """The site a URL belongs to, for "only the site of the given URL": its host, without
    a leading ``www.``, and its port (http and https on their default ports count as one
    site, so ``http://`` redirecting to ``https://`` stays on it)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    host = host.removeprefix("www.")
    try:
        port = parts.port
    except ValueError:
        raise FetchRefused(f"{url}: malformed port") from None
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme):
        port = 0
    return host, port


def same_site(url: str, other: str) -> bool:
    return site_of(url) == site_of(other)


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if address.version == 6 and address.ipv4_mapped:  # ::ffff:127.0.0.1 is 127.0.0.1
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def checked_address(host: str, port: int, *, allow_private_setting: str = "CHATBOT_KB_ALLOW_PRIVATE_HOSTS") -> str:
    """Resolve ``host`` once and return the address to connect to, or raise FetchRefused
    if the setting named ``allow_private_setting`` forbids it (the crawler's by default;
    the webhooks have their own). Every address the name resolves to is checked, not just
    the first: a name answering with one public and one private address is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise FetchError(f"{host}: cannot resolve ({error})") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise FetchError(f"{host}: no address")
    if not getattr(settings, allow_private_setting):
        for address in addresses:
            if _forbidden(address):
                raise FetchRefused(
                    f"{host} resolves to {address}, a private or reserved address ({allow_private_setting} is off)"
                )
    return str(addresses[0])


@dataclass
class Fetcher:
    """One crawl's HTTP client. Use as a context manager; ``requests`` counts every request
    sent (redirect hops and robots.txt included), for the sync run's report.

    ``deadline`` (a ``time.monotonic()`` value) is the whole run's: no request outlives it.
    """

    deadline: float | None = None
    requests: int = 0
    _client: httpx.Client = field(init=False, repr=False)

    def __enter__(self) -> Fetcher:
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.CHATBOT_KB_FETCH_TIMEOUT),
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": settings.CHATBOT_KB_USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        )
        return self

    def __exit__(self, *exc_info) -> None:
        self._client.close()

    def get(self, url: str, *, etag: str = "", last_modified: str = "") -> Response:
        """GET ``url``, following redirects within its site. Raises FetchRefused for what
        may not be fetched, FetchError for what could not be; any HTTP status is returned."""
        conditional = {}
        if etag:
            conditional["If-None-Match"] = etag
        if last_modified:
            conditional["If-Modified-Since"] = last_modified
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._get_once(current, conditional)
            if not isinstance(response, str):
                return response
            target = urljoin(current, response)
            if not same_site(url, target):
                raise FetchRefused(f"{current} redirects to {target}, another site")
            current = target
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")

    def _get_once(self, url: str, headers: dict[str, str]) -> Response | str:
        """One request, to the checked address; a redirect's Location is returned as a str."""
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise FetchRefused(f"{url}: only http and https URLs can be fetched")
        if parts.username or parts.password:
            raise FetchRefused(f"{url}: URLs with credentials are not fetched")
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as error:
            raise FetchRefused(f"{url}: {error}") from None
        host = parsed.raw_host.decode("ascii")  # IDNA-encoded, as DNS and TLS see it
        port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
        started = time.monotonic()
        budget = settings.CHATBOT_KB_FETCH_TIMEOUT
        if self.deadline is not None:
            budget = min(budget, self.deadline - started)
            if budget <= 0:
                raise FetchError(f"{url}: the sync's time limit (CHATBOT_KB_CRAWL_SECONDS) is spent")
        give_up_at = started + budget

        address = checked_address(host, port)
        request = self._client.build_request(
            "GET",
            parsed.copy_with(host=address),
            headers={**headers, "Host": parsed.netloc.decode("ascii")},
            extensions={"sni_hostname": host} if parsed.scheme == "https" else {},
            timeout=httpx.Timeout(budget),
        )
        self.requests += 1
        try:
            response = self._client.send(request, stream=True)
        except httpx.TimeoutException:
            raise FetchError(f"{url}: timed out") from None
        except httpx.HTTPError as error:
            raise FetchError(f"{url}: {error.__class__.__name__}: {error}") from None
        try:
            if response.status_code in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(f"{url}: redirect without a Location")
                return location
            body = b""
            if response.status_code == 200:
                body = self._read_bounded(url, response, give_up_at)
            return Response(
                url=url,
                status=response.status_code,
                body=body,
                content_type=response.headers.get("Content-Type", ""),
                etag=response.headers.get("ETag", ""),
                last_modified=response.headers.get("Last-Modified", ""),
            )
        finally:
            response.close()

    @staticmethod
    def _read_bounded(url: str, response: httpx.Response, give_up_at: float) -> bytes:
        limit = settings.CHATBOT_KB_MAX_PAGE_BYTES
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(f"{url}: {declared} bytes, over CHATBOT_KB_MAX_PAGE_BYTES ({limit})")
        chunks: list[bytes] = []
        size = 0
        try:
            # Decoded bytes are counted, so a small gzip body that inflates past the limit stops too.
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise FetchError(f"{url}: over CHATBOT_KB_MAX_PAGE_BYTES ({limit} bytes)")
                if time.monotonic() > give_up_at:
                    raise FetchError(f"{url}: timed out while reading")
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise FetchError(f"{url}: timed out while reading") from None
        except httpx.HTTPError as error:
            raise FetchError(f"{url}: {error.__class__.__name__}: {error}") from None
        return b"".join(chunks)
