"""auth_service's database models (SQLAlchemy 2 typed models)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    CheckConstraint,
    CursorResult,
    Delete,
    Double,
    ForeignKey,
    String,
    UniqueConstraint,
    Update,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from servicekit import make_db
from servicekit.db import UtcDateTime, utcnow
from servicekit.tokens import ROLES

db = make_db()


def changed_rows(statement: Update | Delete) -> int:
    """Run an UPDATE or DELETE in the current transaction; how many rows it matched."""
    result = cast(CursorResult[Any], db.session.execute(statement))
    return int(result.rowcount)


def new_public_id() -> str:
    """16 random hex characters: the user's id in tokens and URLs, never the row id."""
    return secrets.token_hex(8)


class User(db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN (" + ", ".join(f"'{role}'" for role in ROLES) + ")",
            name="role",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    first_name: Mapped[str] = mapped_column(String(150), default="")
    last_name: Mapped[str] = mapped_column(String(150), default="")
    phone_number: Mapped[str | None] = mapped_column(String(16))
    college_name: Mapped[str] = mapped_column(String(200), default="")
    profile_picture: Mapped[str | None] = mapped_column(String(2048))
    # None: the account has no password (it signs in another way).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="normal", server_default="normal")
    # Staff privileges: {"event": ["create", "read"]}; the `priv` claim is their compact form.
    privileges: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    date_joined: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Tokens issued (`iat`, epoch seconds) before this instant are refused.
    tokens_valid_after: Mapped[float | None] = mapped_column(Double())

    @property
    def is_staff(self) -> bool:
        return self.role in ("staff", "superuser")

    def __repr__(self) -> str:
        return f"<User {self.username!r} {self.role}>"


def user_reference() -> Mapped[int]:
    """A user's row id; the row goes when the user is deleted."""
    return mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class RefreshToken(db.Model):  # type: ignore[name-defined]
    """One issued refresh token. Each login starts a family; each refresh uses up the
    presented token and issues the next one of the family. Presenting a used token again
    means it was stolen (or replayed): the whole family is revoked."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    user_id: Mapped[int] = user_reference()
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The access token issued with it, so revoking the session revokes that one too.
    access_jti: Mapped[str] = mapped_column(String(36))
    access_expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ApiToken(db.Model):  # type: ignore[name-defined]
    """A long-lived access token of the image API (`POST /api-token-auth/`)."""

    __tablename__ = "api_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = user_reference()
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class PasswordResetToken(db.Model):  # type: ignore[name-defined]
    """A mailed password reset token: only its SHA-256 is stored; single use, expiring."""

    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = user_reference()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class LinkedIdentity(db.Model):  # type: ignore[name-defined]
    """An account of an outside identity provider linked to a user (OAuth sign-in)."""

    __tablename__ = "linked_identities"
    __table_args__ = (
        UniqueConstraint("provider", "subject"),
        UniqueConstraint("user_id", "provider"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = user_reference()
    provider: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    picture_url: Mapped[str | None] = mapped_column(String(2048))
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
