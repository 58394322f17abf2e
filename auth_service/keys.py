"""auth_service's signing keys: RSA private keys as PEM files; the newest signs, all are published.

Keys live in `JWT_KEYS_DIR` as `key-000001.pem`, `key-000002.pem`, ...: name order is age
order. The last file signs the tokens of a process started after it appeared; every key
in the directory is published in the JWKS, so tokens signed by an older key stay valid
until they expire. To rotate: `add_signing_key(directory)` (every running replica
publishes the new key at once, since the JWKS is read from the directory), then restart
the auth_service processes so they sign with it; drop an old file once the longest-lived
token it signed has expired (`drop_retired_keys`; the `rotate-signing-key` command does
both). `JWT_PRIVATE_KEY_FILE` instead names one key (for example a
mounted secret), which is then the only key.

With `JWT_GENERATE_KEYS=false` the directory is only read, never written: it is a mounted
secret holding `key-000001.pem`, ... (a Kubernetes Secret, say), a start with no key in it
fails, and rotating means changing the secret (the commands refuse).

A key file is written under a temporary name and hard-linked into place, so it is never
seen half-written, and processes starting together cannot each create a different "first"
key: the link to `key-000001.pem` succeeds for exactly one of them, the others load it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from auth_service.settings import AuthSettings
from servicekit.keys import KeyResolver, StaticKeySet, public_jwk
from servicekit.settings import SettingsError

log = logging.getLogger(__name__)

KEY_SIZE = 2048
PUBLIC_EXPONENT = 65537
_SEQUENCE_NAME = re.compile(r"^key-(\d+)\.pem$")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < KEY_SIZE:
            raise ValueError(f"{path}: not an RSA private key of at least {KEY_SIZE} bits")
        return cls(kid=jwk_thumbprint(key.public_key()), private_key=key)

    @property
    def private_pem(self) -> bytes:
        return _pem(self.private_key)

    def public_jwk(self) -> dict[str, Any]:
        return public_jwk(self.private_key.public_key(), self.kid)


def jwk_thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638: base64url(SHA-256) of the key's required members, sorted, no whitespace."""
    jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    members = json.dumps(
        {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(members.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _pem(private_key: rsa.RSAPrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def key_files(directory: Path) -> list[Path]:
    """The key files of `directory`, oldest first (name order)."""
    if not directory.is_dir():
        return []
    return sorted(
        (p for p in directory.glob("*.pem") if not p.name.startswith(".") and p.is_file()),
        key=lambda p: p.name,
    )


class NoSigningKey(SettingsError):
    """The keys directory holds no key and may not (or cannot) be written."""


class KeysDirectoryNotWritable(RuntimeError):
    """A key could not be written to the keys directory (a read-only mount, say)."""


def existing_signing_key(directory: Path) -> Path:
    """The newest key file of `directory`, which is only read (never created or written)."""
    files = key_files(Path(directory))
    if not files:
        raise NoSigningKey(
            f"JWT_KEYS_DIR={directory} holds no signing key (key-000001.pem, ...) and "
            "JWT_GENERATE_KEYS is false: put a key there (the secret's files), or let "
            "auth_service create one with JWT_GENERATE_KEYS=true on a writable directory"
        )
    return files[-1]


def ensure_signing_key(directory: Path) -> Path:
    """The newest key file of `directory`, after creating the first one if there is none."""
    directory = Path(directory)
    if not key_files(directory):
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write_key(directory, directory / _sequence_name(1))  # a lost race is fine
        except OSError as exc:
            raise NoSigningKey(
                f"JWT_KEYS_DIR={directory} holds no signing key and the first one cannot "
                f"be written there ({exc.strerror or type(exc).__name__})"
            ) from None
    return key_files(directory)[-1]


def add_signing_key(directory: Path) -> Path:
    """Create a key that sorts after every existing one; it signs after the next restart."""
    directory = Path(directory)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        while True:
            numbers = [_sequence(p) for p in key_files(directory)]
            target = directory / _sequence_name(max(numbers, default=0) + 1)
            if _write_key(directory, target):
                return target
    except OSError as exc:
        raise KeysDirectoryNotWritable(
            f"cannot write a key to JWT_KEYS_DIR={directory} ({exc.strerror or type(exc).__name__})"
        ) from None


def drop_retired_keys(directory: Path, older_than: float, now: float | None = None) -> list[Path]:
    """Delete the key files retired at least `older_than` seconds ago; return them.

    A key retires when a newer one is added (its file's time): processes started after
    that sign with the newer key, so the tokens the old one signed expire within the
    longest token lifetime. The newest key is never dropped.
    """
    now = time.time() if now is None else now
    files = key_files(Path(directory))
    dropped = []
    for key_file, successor in itertools.pairwise(files):
        if now - successor.stat().st_mtime >= older_than:
            key_file.unlink(missing_ok=True)
            dropped.append(key_file)
    return dropped


def _sequence(path: Path) -> int:
    match = _SEQUENCE_NAME.match(path.name)
    return int(match.group(1)) if match else 0


def _sequence_name(number: int) -> str:
    return f"key-{number:06d}.pem"


def _write_key(directory: Path, target: Path) -> bool:
    """Write a new key to `target` unless that name exists; False when another process won."""
    key = rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=KEY_SIZE)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".key-", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:  # mkstemp creates the file with mode 0600
            handle.write(_pem(key))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, target)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(temporary)


class KeyRing:
    """This process's keys: one signs (chosen at start), every key on disk is published.

    The directory is read again, at most once per `rescan_interval`, when the JWKS is
    asked for and when a token names an unknown `kid`, so a key added by another
    replica is published and accepted without a restart.
    """

    def __init__(
        self,
        signing_key: SigningKey,
        directory: Path | None = None,
        loaded: dict[Path, SigningKey] | None = None,
        rescan_interval: float = 1.0,
    ) -> None:
        self.signing_key = signing_key
        self.directory = directory
        self.rescan_interval = rescan_interval
        self._loaded = dict(loaded or {})
        self._scanned_at = time.monotonic() if directory is not None else float("-inf")
        self._lock = threading.Lock()
        self._publish([signing_key, *self._loaded.values()])

    @classmethod
    def from_directory(cls, directory: Path, *, generate: bool = True) -> KeyRing:
        """Every key of `directory` (a broken file fails here, at start); the newest signs.

        `generate`: create the directory and a first key when there is none; without it
        the directory is only read.
        """
        directory = Path(directory)
        if generate:
            ensure_signing_key(directory)
        else:
            existing_signing_key(directory)
        loaded = {path: SigningKey.load(path) for path in key_files(directory)}
        newest = list(loaded.values())[-1]
        return cls(newest, directory, loaded)

    @classmethod
    def from_file(cls, path: Path) -> KeyRing:
        return cls(SigningKey.load(Path(path)))

    def jwks(self) -> dict[str, Any]:
        self.rescan()
        return self._jwks

    def key_for(self, kid: str | None) -> Any | None:
        key = self._verifier.key_for(kid)
        if key is None and kid:
            self.rescan()
            key = self._verifier.key_for(kid)
        return key

    def rescan(self) -> None:
        if self.directory is None:
            return
        with self._lock:
            if time.monotonic() - self._scanned_at < self.rescan_interval:
                return
            self._scanned_at = time.monotonic()
            loaded: dict[Path, SigningKey] = {}
            for path in key_files(self.directory):
                key = self._loaded.get(path) or _load_or_warn(path)
                if key is not None:
                    loaded[path] = key
            self._loaded = loaded
            self._publish([self.signing_key, *loaded.values()])

    def _publish(self, keys: list[SigningKey]) -> None:
        unique = {key.kid: key for key in keys}
        self._jwks = {"keys": [key.public_jwk() for key in unique.values()]}
        self._verifier = StaticKeySet(self._jwks)


def _load_or_warn(path: Path) -> SigningKey | None:
    """A key file that appeared while running; a broken one must not break the JWKS."""
    try:
        return SigningKey.load(path)
    except (OSError, ValueError, TypeError) as exc:
        log.warning("unusable signing key file", extra={"path": str(path), "error": str(exc)})
        return None


def load_keyring(settings: AuthSettings) -> KeyRing:
    """The key ring the settings name: `JWT_PRIVATE_KEY_FILE`, else `JWT_KEYS_DIR`."""
    if settings.private_key_file is not None:
        return KeyRing.from_file(settings.private_key_file)
    return KeyRing.from_directory(settings.keys_dir, generate=settings.generate_keys)


class ChainedKeys:
    """Verification keys from several sources: the first that knows a `kid` answers."""

    def __init__(self, *resolvers: KeyResolver) -> None:
        self.resolvers = resolvers

    def key_for(self, kid: str | None) -> Any | None:
        for resolver in self.resolvers:
            key = resolver.key_for(kid)
            if key is not None:
                return key
        return None
