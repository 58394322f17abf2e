"""Which headers cross the gateway, both ways, and the client address it settles on."""

from __future__ import annotations

from collections.abc import Iterable

from multidict import CIMultiDict, CIMultiDictProxy

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        # The gateway has read the whole body: the service need not agree to receive it.
        "expect",
        # Framing is the gateway's own on each side: it sends the length of what it read.
        "content-length",
    }
)
# Identity is only ever what the gateway verified: a client cannot claim to be someone.
IDENTITY_PREFIXES = (
    "x-user",
    "x-auth",
    "x-identity",
    "x-remote-user",
    "x-forwarded-user",
    "x-service",
    "remote-user",
    "x-authenticated",
)


def _connection_tokens(values: Iterable[str]) -> set[str]:
    return {token.strip().lower() for value in values for token in value.split(",")}


def forwarded_headers(
    received: CIMultiDictProxy[str],
    *,
    request_id: str,
    forwarded_for: str,
    scheme: str,
    body_size: int | None,
    drop_authorization: bool,
) -> CIMultiDict[str]:
    """The client's headers minus hop-by-hop, Host and identity headers, plus X-Forwarded-*
    and the length of the body as the gateway read it."""
    named_by_connection = _connection_tokens(received.getall("Connection", ()))
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in received.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in named_by_connection or lower == "host":
            continue
        if lower.startswith(IDENTITY_PREFIXES) or lower.startswith("x-forwarded-"):
            continue
        if lower == "x-request-id" or (drop_authorization and lower == "authorization"):
            continue
        headers.add(name, value)
    if body_size is not None:
        headers["Content-Length"] = str(body_size)
    headers["X-Forwarded-For"] = forwarded_for
    headers["X-Forwarded-Proto"] = scheme
    headers["X-Forwarded-Host"] = received.get("Host", "")
    headers["X-Request-ID"] = request_id
    return headers


def answer_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The service's headers minus hop-by-hop ones and its X-Request-ID (the gateway adds
    its own, so the client gets exactly one)."""
    decoded = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]
    named_by_connection = _connection_tokens(
        value for name, value in decoded if name.lower() == "connection"
    )
    dropped = HOP_BY_HOP | named_by_connection | {"x-request-id"}
    return [(name, value) for name, value in decoded if name.lower() not in dropped]


def client_address(peer: str, forwarded_for: str | None, trusted_proxies: int) -> tuple[str, str]:
    """The client's address, and the X-Forwarded-For to pass on (ending with that address).

    With N trusted proxies in front, the client is the Nth entry from the right of their
    X-Forwarded-For; entries further left were written by the client and prove nothing.
    The forwarded chain ends with the client address the gateway settled on, so services
    can take its last element.
    """
    chain = [part.strip() for part in (forwarded_for or "").split(",")]
    chain = [part for part in chain if part]
    if trusted_proxies > 0 and len(chain) >= trusted_proxies:
        position = len(chain) - trusted_proxies
        return chain[position], ", ".join(chain[: position + 1])
    return peer, ", ".join([*chain, peer])
