"""Password reset by mail: a random token, stored only as its SHA-256, single use, expiring.

Requesting a reset answers the same whether or not the account exists; the mail (if any)
is delivered in the background. A new request replaces the user's earlier tokens; using
a token sets the password, uses up every token of the user and revokes every session.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import delete, select, update

from auth_service import sessions
from auth_service.context import AuthContext
from auth_service.errors import InvalidInput, InvalidResetToken
from auth_service.mail import Mailer
from auth_service.models import PasswordResetToken, User, changed_rows, db
from auth_service.passwords import password_problem
from servicekit.db import utcnow

TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def request_reset(context: AuthContext, username: str, address: str) -> None:
    """Mail a reset token to the account's address, when there is such an active account."""
    throttle = context.reset_throttle()
    throttle.check(username, address)
    throttle.count(username, address)
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active or not user.email:
        return
    token = secrets.token_urlsafe(TOKEN_BYTES)
    ttl = context.settings.reset_ttl
    db.session.execute(
        delete(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id)
        .execution_options(synchronize_session=False)
    )
    db.session.add(
        PasswordResetToken(
            user_id=user.id,
            token_hash=token_hash(token),
            expires_at=utcnow() + timedelta(seconds=ttl),
        )
    )
    db.session.commit()
    context.mailer.send(reset_message(context.mailer, user, token, ttl))


def reset_message(mailer: Mailer, user: User, token: str, ttl: int) -> EmailMessage:
    minutes = max(1, ttl // 60)
    body = (
        f"Hello {user.first_name or user.username},\n\n"
        f"Someone asked to reset the password of the account {user.username!r}.\n"
        f"If it was you, use this reset token within {minutes} minutes:\n\n"
        f"    {token}\n\n"
        f"Send it as `resetToken`, with your `newPassword`, in\n"
        f"PATCH /users/{user.username}/password/\n\n"
        "If it was not you, ignore this message: your password stays as it is.\n"
    )
    return mailer.message(str(user.email), "Your password reset token", body)


def reset_password(context: AuthContext, username: str, token: str, new_password: str) -> None:
    """Set the password of `username` with a live reset token of theirs; raises
    InvalidResetToken for an unknown, expired or used token (one answer for all)."""
    problem = password_problem(new_password, username)
    if problem:
        raise InvalidInput({"newPassword": problem})
    now = utcnow()
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        raise InvalidResetToken()
    used_up = changed_rows(
        update(PasswordResetToken)
        .where(
            PasswordResetToken.user_id == user.id,
            PasswordResetToken.token_hash == token_hash(token),
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if used_up != 1:
        db.session.rollback()
        raise InvalidResetToken()
    db.session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    user.password_hash = context.passwords.hash(new_password)
    sessions.revoke_everything(context, user)
    db.session.commit()
