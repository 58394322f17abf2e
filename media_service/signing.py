"""Signed media URLs: an HMAC over the key and an expiry, like presigned object-store URLs.

`<img src>` cannot send a token, so a user's image URL carries its own proof:
`/media/<key>?expires=<unix time>&signature=<HMAC-SHA256(key, expires), base64url>`.
Anyone holding the URL can fetch the file until it expires, and no token, another user's
or the owner's, replaces the signature. Replacing or deleting the image removes the key's
file, which revokes every URL made for it at once; rotating `MEDIA_URL_SECRET` revokes all.

Expiries are rounded up to a window, so the URLs handed out within one window are the same
string and browsers can cache the image.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from dataclasses import dataclass

from servicekit.errors import DomainError


class InvalidSignature(DomainError):
    status, code, message = 403, "invalid_signature", "missing or invalid URL signature"


class UrlExpired(DomainError):
    status, code, message = 403, "url_expired", "this URL has expired: ask for the image again"


@dataclass(frozen=True)
class UrlSigner:
    secret: bytes
    ttl: int  # seconds a URL stays valid at least
    window: int  # expiries are rounded up to a multiple of this

    def expiry(self, now: float) -> int:
        return math.ceil((now + self.ttl) / self.window) * self.window

    def signature(self, key: str, expires: int) -> str:
        message = f"{key}\n{expires}".encode()
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def query(self, key: str, now: float) -> str:
        expires = self.expiry(now)
        return f"expires={expires}&signature={self.signature(key, expires)}"

    def check(self, key: str, expires: str | None, signature: str | None, now: float) -> int:
        """The expiry of a genuine, unexpired URL; raise InvalidSignature or UrlExpired."""
        if not expires or not signature or len(expires) > 12:
            raise InvalidSignature()
        if not (expires.isascii() and expires.isdigit()):  # "²" is a digit int() refuses
            raise InvalidSignature()
        expected = self.signature(key, int(expires))
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise InvalidSignature()
        if int(expires) < now:
            raise UrlExpired()
        return int(expires)
