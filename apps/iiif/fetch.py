"""Fetching from IIIF servers without becoming a proxy into the server's own network.

A researcher names a URL and the web process fetches it, so every fetch is a possible
server-side request forgery. The rules, each refusal an `ApplicationError` with an `iiif_*`
code and status 400:

- http and https only, on the URL given and on every redirect;
- the host must be in `IIIF_ALLOWED_HOSTS` (trusted by the operator, whatever its address:
  an institution may run its IIIF server inside its own network), or, with
  `IIIF_ALLOW_ANY_HOST`, any other host whose every address is public: loopback, link-local,
  private, shared (CGNAT), reserved, multicast and unspecified addresses are refused;
- the name is resolved once and the connection goes to the address that was checked (the
  `Host` header and, for https, SNI and certificate check keep the name), so a DNS answer that
  changes between the check and the connection (DNS rebinding) cannot reach another address;
- redirects are followed by hand, at most `IIIF_MAX_REDIRECTS`, each checked as above;
- connect and read timeouts (`IIIF_TIMEOUT_SECONDS`), a deadline for the whole fetch,
  redirects included (`IIIF_DEADLINE_SECONDS`: a server that sends a byte now and then, each
  within the read timeout, would otherwise hold a web thread for hours), and a byte limit:
  the body is streamed and the fetch stops as soon as it passes the limit (a
  `Content-Length` over it is refused before any byte is read).

urllib3 is used directly (not `requests`) because its connection pools can be pointed at an
address while verifying the certificate for the name.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings

from apps.core.errors import ApplicationError

USER_AGENT = "ArteFact-IIIF/1 (+https://github.com/samwaugh/ArteFact)"
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Fetched:
    """A body that was fetched whole, with the URL it finally came from."""

    url: str
    content_type: str
    content: bytes


def iiif_enabled() -> bool:
    """IIIF in is on when some host may be fetched from."""
    return bool(settings.IIIF_ALLOWED_HOSTS) or settings.IIIF_ALLOW_ANY_HOST


def _refuse(code: str, sentence: str) -> ApplicationError:
    return ApplicationError(code, sentence)


def _host_allowed(host: str) -> bool:
    """Whether `host` (lower case, no port) is one the operator lists."""
    return host in {name.lower().strip("[]") for name in settings.IIIF_ALLOWED_HOSTS}


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global
    )


def resolve(host: str, port: int) -> str:
    """The address to connect to for `host`.

    An allow-listed host connects to its first address as resolved; any other host (only with
    IIIF_ALLOW_ANY_HOST) needs every address it resolves to to be public, so that a name with
    one public and one private address cannot be used either.
    """
    listed = _host_allowed(host)
    if not listed and not settings.IIIF_ALLOW_ANY_HOST:
        raise _refuse(
            "iiif_host_not_allowed",
            f"Images are fetched only from the IIIF servers this site trusts; {host} is not "
            "one of them.",
        )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise _refuse("iiif_unreachable", f"The name {host} could not be resolved.") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise _refuse("iiif_unreachable", f"The name {host} could not be resolved.")
    if not listed:
        for address in addresses:
            if not _public(address):
                raise _refuse(
                    "iiif_private_address",
                    f"{host} leads to {address}, an address that is not on the public "
                    "internet; it is not fetched from.",
                )
    return str(addresses[0])


def _pool(scheme: str, host: str, address: str, port: int, timeout: urllib3.Timeout):
    if scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            assert_hostname=host,
            server_hostname=host,
        )
    return urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)


def _split(url: str) -> tuple[str, str, int, str]:
    """Scheme, host, port and path-with-query of an absolute http(s) URL, or a refusal."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("iiif_bad_url", "That is not a URL that can be fetched.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _refuse(
            "iiif_bad_scheme",
            f"Only http and https URLs are fetched, not {scheme or 'a URL without a scheme'}.",
        )
    host = (parts.hostname or "").lower()
    if not host:
        raise _refuse("iiif_bad_url", "The URL names no host.")
    if parts.username or parts.password:
        raise _refuse("iiif_bad_url", "URLs with a user name or password are not fetched.")
    port = port or (443 if scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return scheme, host, port, target


def fetch(url: str, *, max_bytes: int | None = None, accept: str = "*/*") -> Fetched:
    """GET `url` under the rules of this module and return its whole body.

    `max_bytes` defaults to ANALYSIS_MAX_UPLOAD_BYTES: nothing fetched is larger than an
    upload may be.
    """
    limit = settings.ANALYSIS_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    timeout = urllib3.Timeout(
        connect=settings.IIIF_TIMEOUT_SECONDS, read=settings.IIIF_TIMEOUT_SECONDS
    )
    deadline = time.monotonic() + settings.IIIF_DEADLINE_SECONDS
    for _hop in range(settings.IIIF_MAX_REDIRECTS + 1):
        scheme, host, port, target = _split(url)
        address = resolve(host, port)
        default_port = 443 if scheme == "https" else 80
        headers = {
            "Host": host if port == default_port else f"{host}:{port}",
            "User-Agent": USER_AGENT,
            "Accept": accept,
            "Accept-Encoding": "identity",
        }
        pool = _pool(scheme, host, address, port, timeout)
        try:
            response = pool.urlopen(
                "GET", target, headers=headers, redirect=False, preload_content=False
            )
        except urllib3.exceptions.HTTPError as error:
            pool.close()
            raise _refuse(
                "iiif_unreachable", f"{host} could not be reached ({type(error).__name__})."
            ) from None
        try:
            if response.status in REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise _refuse("iiif_bad_response", f"{host} answered a redirect to nowhere.")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise _refuse("iiif_bad_response", f"{host} answered {response.status} for {url}.")
            body = _read_limited(response, limit, host, deadline)
            return Fetched(url, response.headers.get("Content-Type", ""), body)
        finally:
            response.release_conn()
            pool.close()
    raise _refuse(
        "iiif_too_many_redirects",
        f"The URL redirected more than {settings.IIIF_MAX_REDIRECTS} times; it is not followed.",
    )


def _too_large(limit: int) -> ApplicationError:
    return _refuse(
        "iiif_too_large",
        f"The IIIF server sent more than {limit / 1_000_000:.1f} MB, the limit; nothing was kept.",
    )


def _read_limited(
    response: urllib3.BaseHTTPResponse, limit: int, host: str, deadline: float
) -> bytes:
    """The body, read as it comes (`read1`: one read of the socket at a time, each within the
    read timeout) until it ends, passes `limit` bytes or the `deadline` (monotonic) passes."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := response.read1(CHUNK, decode_content=False):
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            if time.monotonic() > deadline:
                raise _refuse(
                    "iiif_too_slow",
                    f"{host} took longer than {settings.IIIF_DEADLINE_SECONDS} s to send it; "
                    "nothing was kept.",
                )
            chunks.append(chunk)
    except urllib3.exceptions.HTTPError as error:
        raise _refuse(
            "iiif_unreachable", f"{host} stopped answering ({type(error).__name__})."
        ) from None
    return b"".join(chunks)
