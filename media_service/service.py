"""media_service's domain: users' images, other services' files, quotas, the orphan sweep.

Every write stores its files first (each atomically, under new keys), then records them in
one transaction; if anything fails, the files just written are removed. Files a write
replaces or deletes are removed after its commit. A crash between the two steps can leave
a file nobody refers to; `sweep_orphans` (the `flask --app media_service sweep` command)
removes those.

Refusals are the exceptions below (and imaging's); each carries its HTTP answer
(servicekit.errors).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from media_service.imaging import Prepared, prepare
from media_service.models import NAME_LENGTH, Image, StoredFile, Usage, db
from media_service.settings import MediaSettings
from media_service.storage import Storage, is_valid_key
from servicekit.db import utcnow
from servicekit.errors import DomainError
from servicekit.pagination import Page, Window, paginate

# Image ids are 32-bit; a larger one in a URL names no image (and must not reach the database).
MAX_IMAGE_ID = 2**31 - 1


class EmptyUpload(DomainError):
    status, code, message = 400, "validation_error", "the uploaded file is empty"

    def __init__(self, field: str) -> None:
        super().__init__(errors={field: "empty file"})
        self.field = field


class FileTooLarge(DomainError):
    status, code = 413, "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"file over {limit} bytes")
        self.limit = limit


class QuotaExceeded(DomainError):
    """A write that does not fit in the owner's quota; the subclass says which."""

    code = "quota_exceeded"

    def __init__(self, message: str, used: int, limit: int) -> None:
        super().__init__(message)
        self.used = used
        self.limit = limit


class ImageQuotaExceeded(QuotaExceeded):
    status = 409

    def __init__(self, used: int, limit: int) -> None:
        message = f"image limit reached: you have {used} of at most {limit} images"
        super().__init__(message, used, limit)


class StorageQuotaExceeded(QuotaExceeded):
    status = 413

    def __init__(self, used: int, limit: int) -> None:
        super().__init__(f"storage quota exceeded: {used} of {limit} bytes used", used, limit)


class ImageNotFound(DomainError):
    status, code, message = 404, "not_found", "no such image"


class FileNotFound(DomainError):
    status, code, message = 404, "not_found", "no such file"


@dataclass(frozen=True)
class Upload:
    """An uploaded file as the API received it (spooled to disk by the form parser)."""

    stream: BinaryIO
    filename: str
    field: str = "image"  # the form field it came in, for error messages


@dataclass(frozen=True)
class Written:
    """An upload's clean image and thumbnail, stored under new keys."""

    prepared: Prepared
    key: str
    size: int
    sha256: str
    thumbnail_key: str
    thumbnail_size: int


# Images of the image API


def create_image(owner: str, upload: Upload, storage: Storage, settings: MediaSettings) -> Image:
    with written_upload(upload, storage, settings) as written:
        reserve(owner, written.size + written.thumbnail_size, 1, settings)
        image = Image(owner=owner, created_at=utcnow())
        fill(image, written, upload)
        db.session.add(image)
        db.session.commit()
    return image


def replace_image(
    owner: str, image_id: int, upload: Upload, storage: Storage, settings: MediaSettings
) -> Image:
    owned_image(owner, image_id)  # 404 before the upload is decoded
    db.session.rollback()  # no transaction stays open while the upload is decoded
    with written_upload(upload, storage, settings) as written:
        lock_owner(owner)
        image = owned_image(owner, image_id)
        old_keys = (image.key, image.thumbnail_key)
        reserve(owner, written.size + written.thumbnail_size - image.stored_bytes, 0, settings)
        fill(image, written, upload)
        db.session.commit()
    remove_files(storage, old_keys)
    return image


def delete_image(owner: str, image_id: int, storage: Storage) -> None:
    lock_owner(owner)
    image = owned_image(owner, image_id)
    keys = (image.key, image.thumbnail_key)
    release(owner, image.stored_bytes, 1)
    db.session.delete(image)
    db.session.commit()
    remove_files(storage, keys)


def owned_image(owner: str, image_id: int) -> Image:
    """The caller's image; another user's is as missing as one that never existed."""
    image = None
    if 0 < image_id <= MAX_IMAGE_ID:
        query = select(Image).where(Image.id == image_id, Image.owner == owner)
        image = db.session.scalars(query).one_or_none()
    if image is None:
        db.session.rollback()
        raise ImageNotFound()
    return image


def list_images(owner: str, window: Window) -> Page[Image]:
    """One page of the caller's images, oldest first, and how many there are in all."""
    statement = select(Image).where(Image.owner == owner).order_by(Image.id)
    return paginate(db.session, statement, window)


def fill(image: Image, written: Written, upload: Upload) -> None:
    picture = written.prepared.picture
    image.key = written.key
    image.thumbnail_key = written.thumbnail_key
    image.original_name = display_name(upload.filename)
    image.content_type = picture.content_type
    image.size = written.size
    image.thumbnail_size = written.thumbnail_size
    image.width = picture.width
    image.height = picture.height
    image.sha256 = written.sha256
    image.updated_at = utcnow()


def display_name(filename: str) -> str:
    """The client's file name, for display only: never part of a path or key."""
    name = os.path.basename(filename.replace("\\", "/")).strip()
    name = "".join(c for c in name if c.isprintable())
    return name[:NAME_LENGTH]


# Quotas


def lock_owner(owner: str) -> None:
    """Serialize the writes of one owner until the transaction ends: the owner's usage row,
    locked (PostgreSQL row lock; on SQLite the insert takes the database's write lock)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Usage).values(owner=owner, bytes=0, images=0)
    db.session.execute(statement.on_conflict_do_nothing(index_elements=["owner"]))
    db.session.execute(select(Usage.owner).where(Usage.owner == owner).with_for_update())


def reserve(owner: str, extra_bytes: int, extra_images: int, settings: MediaSettings) -> None:
    """Count a write against the owner's quota, atomically; QuotaExceeded if it does not fit.
    Concurrent uploads of one owner are counted one after the other, so they cannot both
    slip under the limit."""
    lock_owner(owner)
    conditions = [Usage.owner == owner]
    if extra_bytes > 0:
        conditions.append(Usage.bytes + extra_bytes <= settings.quota_bytes)
    if extra_images > 0:
        conditions.append(Usage.images + extra_images <= settings.quota_images)
    changed = db.session.execute(
        update(Usage)
        .where(*conditions)
        .values(bytes=Usage.bytes + extra_bytes, images=Usage.images + extra_images)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        usage = db.session.get(Usage, owner, populate_existing=True)
        error = exceeded(usage, extra_bytes, extra_images, settings)
        db.session.rollback()
        raise error


def release(owner: str, freed_bytes: int, freed_images: int) -> None:
    db.session.execute(
        update(Usage)
        .where(Usage.owner == owner)
        .values(bytes=Usage.bytes - freed_bytes, images=Usage.images - freed_images)
    )


def exceeded(
    usage: Usage | None, extra_bytes: int, extra_images: int, settings: MediaSettings
) -> QuotaExceeded:
    used_images = usage.images if usage else 0
    used_bytes = usage.bytes if usage else 0
    if extra_images > 0 and used_images + extra_images > settings.quota_images:
        return ImageQuotaExceeded(used_images, settings.quota_images)
    return StorageQuotaExceeded(used_bytes, settings.quota_bytes)


# Files of other services


def store_file(
    service: str,
    owner: str,
    purpose: str,
    upload: Upload,
    storage: Storage,
    settings: MediaSettings,
) -> StoredFile:
    checked_size(upload, settings.max_bytes)
    prepared = prepare(upload.stream, settings)
    picture = prepared.picture
    stored = storage.put("files", picture.extension, prepared.write_image)
    try:
        record = StoredFile(
            key=stored.key,
            service=service,
            owner=owner,
            purpose=purpose,
            content_type=picture.content_type,
            size=stored.size,
            width=picture.width,
            height=picture.height,
            sha256=stored.sha256,
            created_at=utcnow(),
        )
        db.session.add(record)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        storage.delete(stored.key)
        raise
    return record


def delete_file(service: str, key: str, storage: Storage) -> None:
    """Delete a file the calling service stored; anything else (another service's file, an
    image's key, a malformed key) is not one of its files. One DELETE statement: no read
    first, so no lock upgrade under concurrent writes."""
    if not (key.startswith("files/") and is_valid_key(key)):
        raise FileNotFound()
    deleted = db.session.execute(
        delete(StoredFile).where(StoredFile.key == key, StoredFile.service == service)
    )
    if deleted.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise FileNotFound()
    db.session.commit()
    storage.delete(key)


# Writing


def checked_size(upload: Upload, max_bytes: int) -> int:
    """The upload's size; EmptyUpload when empty, FileTooLarge over the limit."""
    stream = upload.stream
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    if size == 0:
        raise EmptyUpload(upload.field)
    if size > max_bytes:
        raise FileTooLarge(max_bytes)
    return size


@contextmanager
def written_upload(upload: Upload, storage: Storage, settings: MediaSettings) -> Iterator[Written]:
    """The checked upload stored under new keys; removed again if the block fails."""
    checked_size(upload, settings.max_bytes)
    prepared = prepare(upload.stream, settings)
    picture = prepared.picture
    stored = storage.put("images", picture.extension, prepared.write_image)
    keys = [stored.key]
    try:
        thumbnail = storage.put("thumbs", picture.thumbnail_extension, prepared.write_thumbnail)
        keys.append(thumbnail.key)
        yield Written(
            prepared, stored.key, stored.size, stored.sha256, thumbnail.key, thumbnail.size
        )
    except BaseException:
        db.session.rollback()
        remove_files(storage, keys)
        raise


def remove_files(storage: Storage, keys: tuple[str, ...] | list[str]) -> None:
    for key in keys:
        storage.delete(key)


# Orphans


def sweep_orphans(storage: Storage, grace: timedelta) -> int:
    """Remove stored files no record refers to, older than `grace` (so an upload between
    its file write and its commit is never touched). Returns how many were removed."""
    cutoff = utcnow() - grace
    removed = 0
    batch: list[str] = []
    for key, modified in storage.stored_keys():
        if modified < cutoff:
            batch.append(key)
        if len(batch) >= 500:
            removed += _remove_unreferenced(storage, batch)
            batch = []
    removed += _remove_unreferenced(storage, batch)
    return removed + storage.remove_incomplete(cutoff)


def _remove_unreferenced(storage: Storage, keys: list[str]) -> int:
    if not keys:
        return 0
    referenced: set[str] = set()
    for column in (Image.key, Image.thumbnail_key, StoredFile.key):
        referenced.update(db.session.scalars(select(column).where(column.in_(keys))))
    orphans = [key for key in keys if key not in referenced]
    remove_files(storage, orphans)
    return len(orphans)
