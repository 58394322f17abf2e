"""Where file bytes live: the `Storage` interface and its filesystem backend.

Keys are made here, never taken from a client: `<namespace>/<32 random characters>.<ext>`.
A file is written to a temporary name in the same filesystem and renamed into place
atomically, so a reader sees the whole file or nothing, and a failed write leaves nothing.
A stored file never changes: replacing a picture stores a new key, so a key's bytes (and
its ETag) are fixed for its lifetime.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

NAMESPACES = ("images", "thumbs", "files")
KEY_PATTERN = re.compile(r"^(images|thumbs|files)/[A-Za-z0-9_-]{32}\.(jpg|png|gif|webp)\Z")
TEMPORARY_DIR = ".incoming"
CHUNK = 64 * 1024


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class FileStat:
    size: int
    modified: datetime


def new_key(namespace: str, extension: str) -> str:
    if namespace not in NAMESPACES:
        raise ValueError(f"unknown namespace {namespace!r}")
    return f"{namespace}/{secrets.token_urlsafe(24)}.{extension}"  # 192 random bits


def is_valid_key(key: str) -> bool:
    return KEY_PATTERN.match(key) is not None


def key_token(key: str) -> str:
    """The random part of a key: a strong ETag, as a key's bytes never change."""
    return key.rsplit("/", 1)[-1].split(".", 1)[0]


class Storage(Protocol):
    def put(self, namespace: str, extension: str, write: Callable[[BinaryIO], None]) -> StoredFile:
        """Store what `write` writes under a new key; all or nothing."""
        ...

    def stat(self, key: str) -> FileStat | None: ...

    def local_path(self, key: str) -> Path | None:
        """The file on local disk, for sendfile; None if it does not exist."""
        ...

    def delete(self, key: str) -> None:
        """Remove a file; a missing one is not an error."""
        ...

    def stored_keys(self) -> Iterator[tuple[str, datetime]]:
        """Every stored key with its modification time (for the orphan sweep)."""
        ...

    def remove_incomplete(self, older_than: datetime) -> int:
        """Remove partial writes of processes that died mid-upload; how many."""
        ...


class FileSystemStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def put(self, namespace: str, extension: str, write: Callable[[BinaryIO], None]) -> StoredFile:
        key = new_key(namespace, extension)
        incoming = self.root / TEMPORARY_DIR
        incoming.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=incoming, suffix=".part")
        try:
            with os.fdopen(descriptor, "w+b") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
                handle.seek(0)
                size, digest = _measure(handle)
            os.chmod(temporary, 0o644)
            target = self.root / key
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, target)
            _fsync_directory(target.parent)  # the rename itself survives a power cut
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return StoredFile(key=key, size=size, sha256=digest)

    def stat(self, key: str) -> FileStat | None:
        path = self._path(key)
        try:
            result = path.stat()
        except FileNotFoundError:
            return None
        return FileStat(result.st_size, datetime.fromtimestamp(result.st_mtime, UTC))

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def stored_keys(self) -> Iterator[tuple[str, datetime]]:
        for namespace in NAMESPACES:
            folder = self.root / namespace
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                key = f"{namespace}/{entry.name}"
                modified = _modified(entry)
                if modified is not None and entry.is_file() and is_valid_key(key):
                    yield key, modified

    def remove_incomplete(self, older_than: datetime) -> int:
        folder = self.root / TEMPORARY_DIR
        if not folder.is_dir():
            return 0
        removed = 0
        for entry in os.scandir(folder):
            modified = _modified(entry)
            if modified is not None and entry.is_file() and modified < older_than:
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
        return removed

    def _path(self, key: str) -> Path:
        if not is_valid_key(key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key


def _modified(entry: os.DirEntry[str]) -> datetime | None:
    """A directory entry's modification time; None once it is gone (a write that just
    finished renames its temporary file, a deletion removes a file)."""
    try:
        return datetime.fromtimestamp(entry.stat().st_mtime, UTC)
    except FileNotFoundError:
        return None


def _fsync_directory(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _measure(handle: BinaryIO) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()
