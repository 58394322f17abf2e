"""Where the image URLs point: the configured public URL, or the scheme and host the
client used when the allow-list admits that host. A client's value reaches a URL only
after it has been parsed as a `host[:port]` (RFC 3986) and found in the allow-list; it is
never copied as sent, and never echoed in an error."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from servicekit.errors import DomainError

DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 3986: reg-name = *( unreserved / pct-encoded / sub-delims ); IPv4 is one of them.
REG_NAME = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
PORT = re.compile(r"[0-9]{1,5}")
# RFC 3986 path-abempty: "/"-led segments of pchar.
PATH = re.compile(r"(?:/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*)*")
AUTHORITY_END = re.compile(r"[/?#]")


class BadHost(DomainError):
    status, code = 400, "bad_host"
    message = "the request's host is not a valid host[:port]"


class HostNotAllowed(BadHost):
    message = "the request's host is not one this service builds URLs for"


class BadScheme(DomainError):
    status, code = 400, "bad_scheme"
    message = "the forwarded scheme must be http or https"


@dataclass(frozen=True)
class Authority:
    """A parsed `host[:port]`: the host lower-cased, without a final dot, IPv6 compressed
    and in brackets."""

    host: str
    port: int | None

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


def parse_authority(text: str) -> Authority | None:
    """`text` as a `host[:port]` (reg-name, IPv4 or bracketed IPv6; port 1-65535), or None."""
    if text.startswith("["):
        closing = text.find("]")
        host = ipv6_host(text[1:closing]) if closing > 0 else None
        rest = text[closing + 1 :]
    else:
        name, colon, port_text = text.partition(":")
        host = reg_name_host(name)
        rest = colon + port_text
    if host is None:
        return None
    if not rest:
        return Authority(host, None)
    port = parse_port(rest.removeprefix(":")) if rest.startswith(":") else None
    return None if port is None else Authority(host, port)


def ipv6_host(text: str) -> str | None:
    if "%" in text:  # zone identifiers mean nothing outside this machine
        return None
    try:
        return f"[{ipaddress.IPv6Address(text).compressed}]"
    except ValueError:
        return None


def reg_name_host(text: str) -> str | None:
    if not REG_NAME.fullmatch(text):
        return None
    name = text.lower().removesuffix(".")  # "example.org." is "example.org"
    return name or None


def parse_port(text: str) -> int | None:
    if not PORT.fullmatch(text):
        return None
    port = int(text)
    return port if 1 <= port <= 65535 else None


@dataclass(frozen=True)
class AllowedHosts:
    """`MEDIA_ALLOWED_HOSTS`: a bare host admits that host on any port or none; `host:port`
    admits that port only, written or implied by the scheme (`example.org:443` admits
    `https://example.org`)."""

    entries: frozenset[Authority]

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> AllowedHosts:
        parsed = [parse_authority(entry) for entry in entries]
        return cls(frozenset(entry for entry in parsed if entry is not None))

    def admits(self, authority: Authority, scheme: str) -> bool:
        port = authority.port or DEFAULT_PORTS[scheme]
        return Authority(authority.host, None) in self.entries or (
            Authority(authority.host, port) in self.entries
        )


def allowed_hosts_problem(entries: tuple[str, ...]) -> str | None:
    """Why `entries` cannot be `MEDIA_ALLOWED_HOSTS`, or None (the settings' check)."""
    for entry in entries:
        if "*" in entry or entry.startswith("."):
            return "no wildcards or subdomain patterns: list each host, or set MEDIA_PUBLIC_URL"
        if parse_authority(entry) is None:
            return f"{entry!r} is not a host or host:port (IPv6 in brackets, port 1-65535)"
    return None


def request_origin(scheme: str, host: str, allowed: AllowedHosts) -> str:
    """`scheme://host[:port]` of a request, from what the client or the gateway sent;
    BadScheme, BadHost or HostNotAllowed when it cannot be used."""
    scheme = scheme.strip().lower()
    if scheme not in DEFAULT_PORTS:
        raise BadScheme()
    authority = parse_authority(host.strip())
    if authority is None:
        raise BadHost()
    if not allowed.admits(authority, scheme):
        raise HostNotAllowed()
    return f"{scheme}://{authority}"


def parse_public_url(text: str) -> str:
    """`MEDIA_PUBLIC_URL` as the base of the URLs: `scheme://host[:port][/prefix]`, without
    a final "/". ValueError says what is wrong with it."""
    scheme, separator, rest = text.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in DEFAULT_PORTS:
        raise ValueError(f"must be an absolute http:// or https:// URL, got {text!r}")
    if "@" in AUTHORITY_END.split(rest, maxsplit=1)[0]:
        raise ValueError("must not carry credentials (user@host)")
    if "?" in rest or "#" in rest:
        raise ValueError(f"must have no query or fragment, got {text!r}")
    authority_text, slash, path = rest.partition("/")
    authority = parse_authority(authority_text)
    if authority is None:
        raise ValueError(f"must name a host[:port] (IPv6 in brackets), got {text!r}")
    path = slash + path
    if not PATH.fullmatch(path):
        raise ValueError(f"has a path a URL cannot carry (spaces? percent-encode), got {text!r}")
    return f"{scheme}://{authority}{path.rstrip('/')}"


def public_url_problem(text: str) -> str | None:
    """Why `text` cannot be `MEDIA_PUBLIC_URL`, or None (the settings' check)."""
    try:
        parse_public_url(text)
    except ValueError as exc:
        return str(exc)
    return None
