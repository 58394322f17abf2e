"""media_service's database models (SQLAlchemy 2 typed models)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from servicekit import make_db
from servicekit.db import UtcDateTime, utcnow

db = make_db()

OWNER_LENGTH = 64
KEY_LENGTH = 64
NAME_LENGTH = 255
PURPOSE_LENGTH = 32


class Image(db.Model):  # type: ignore[name-defined]
    """A user's picture of the image API: its stored file, thumbnail and what it is."""

    __tablename__ = "images"
    __table_args__ = (Index("ix_images_owner_id", "owner", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(OWNER_LENGTH))  # the token's `sub`
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), unique=True)
    thumbnail_key: Mapped[str] = mapped_column(String(KEY_LENGTH), unique=True)
    original_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)  # bytes of the stored image
    thumbnail_size: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    @property
    def stored_bytes(self) -> int:
        return self.size + self.thumbnail_size

    def __repr__(self) -> str:
        return f"<Image {self.id} of {self.owner!r}>"


class StoredFile(db.Model):  # type: ignore[name-defined]
    """A file another service stored for one of its owners (profile pictures, event
    photos); public at an unguessable URL until that service deletes it."""

    __tablename__ = "stored_files"
    __table_args__ = (Index("ix_stored_files_owner", "owner"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), unique=True)
    service: Mapped[str] = mapped_column(String(OWNER_LENGTH))  # the calling service
    owner: Mapped[str] = mapped_column(String(OWNER_LENGTH))  # opaque to media_service
    purpose: Mapped[str] = mapped_column(String(PURPOSE_LENGTH))
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Usage(db.Model):  # type: ignore[name-defined]
    """What one user's images take, kept with each write so a quota check is one
    conditional UPDATE (atomic under concurrent uploads on SQLite and PostgreSQL)."""

    __tablename__ = "usage"

    owner: Mapped[str] = mapped_column(String(OWNER_LENGTH), primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    images: Mapped[int] = mapped_column(Integer, default=0)
