"""auth_service's domain logic: accounts, credentials and privileges, as plain functions.

Refusals are the exceptions of `auth_service.errors` (re-exported here); each carries
its HTTP answer. Functions that hash passwords, sign or revoke tokens, throttle or store
pictures take the app's `AuthContext` (its settings and the objects built from them).
Who may do what:

- a user reads and updates their own record, and manages their own password and tokens;
- staff read every record; changing another user's record, disabling or enabling it
  takes the `user: update` privilege, deleting it `user: delete` (superusers have all);
- only a superuser changes roles and privileges, or touches a staff or superuser account;
- nobody disables, deletes or changes the role of their own account.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from auth_service import outbox, sessions
from auth_service.context import AuthContext
from auth_service.errors import (
    Forbidden,
    ImageTooLarge,
    InvalidCredentials,
    InvalidInput,
    InvalidResetToken,
    InvalidServiceSecret,
    InvalidToken,
    MediaUnavailable,
    MissingPicture,
    NoLinkedPicture,
    NoPassword,
    NotAnImage,
    NotForYourself,
    PageNotFound,
    PasswordExists,
    PictureTooLarge,
    RevocationUnavailable,
    ServiceTokensDisabled,
    TooManyAttempts,
    UsernameTaken,
    UserNotFound,
    UserNotVisible,
    WrongPassword,
)
from auth_service.models import LinkedIdentity, User, db
from auth_service.passwords import password_problem
from auth_service.pictures import stored_key
from servicekit.db import utcnow
from servicekit.identity import ACTIONS, Identity
from servicekit.pagination import Page, Window, paginate
from servicekit.users import USER_DISABLED, USER_ENABLED

__all__ = [
    "Forbidden",
    "ImageTooLarge",
    "InvalidCredentials",
    "InvalidInput",
    "InvalidResetToken",
    "InvalidServiceSecret",
    "InvalidToken",
    "MediaUnavailable",
    "MissingPicture",
    "NoLinkedPicture",
    "NoPassword",
    "NotAnImage",
    "NotForYourself",
    "PageNotFound",
    "PasswordExists",
    "PictureTooLarge",
    "RevocationUnavailable",
    "ServiceTokensDisabled",
    "TooManyAttempts",
    "UserNotFound",
    "UserNotVisible",
    "UsernameTaken",
    "WrongPassword",
]

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
SERVICE_NAME_PATTERN = re.compile(r"^[a-z_]{2,32}$")
MAX_PAGE_SIZE = 100  # users per page of `GET /users`; a larger `limit` is lowered to it
PROFILE_FIELDS = frozenset(
    {
        "username",
        "email",
        "first_name",
        "last_name",
        "phone_number",
        "college_name",
        "profile_picture",
    }
)


# Accounts


def username_exists(username: str) -> bool:
    return bool(db.session.scalar(select(exists().where(User.username == username))))


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))


def user_by_subject(subject: str) -> User | None:
    return db.session.scalar(select(User).where(User.public_id == subject))


def visible_user(username: str, caller: Identity) -> User:
    """The record `caller` may read: their own, or any for staff.

    A normal user gets the same refusal for another user's record and for a name that
    does not exist, so the answer says nothing about other accounts.
    """
    user = find_user(username)
    if caller.is_staff:
        if user is None:
            raise UserNotFound(username)
        return user
    if user is None or user.public_id != caller.subject:
        raise UserNotVisible(username)
    return user


def changeable_user(username: str, caller: Identity, action: str = "update") -> User:
    """A record `caller` may change: their own, or another's with the `user` privilege
    for `action` (and a superuser's role for staff and superuser accounts)."""
    user = visible_user(username, caller)
    if user.public_id != caller.subject:
        _check_may_manage(caller, user, action)
    return user


def managed_user(username: str, caller: Identity, action: str) -> User:
    """Another user's account, for a staff action on it (disable, enable, delete)."""
    if not caller.is_staff:
        raise Forbidden("staff only")
    user = find_user(username)
    if user is None:
        raise UserNotFound(username)
    if user.public_id == caller.subject:
        raise NotForYourself(action)
    _check_may_manage(caller, user, "delete" if action == "delete" else "update")
    return user


def _check_may_manage(caller: Identity, user: User, action: str) -> None:
    if not caller.can("user", action):
        raise Forbidden(f"missing privilege: user {action}")
    if user.is_staff and not caller.is_superuser:
        raise Forbidden("only a superuser may change a staff or superuser account")


def own_user(username: str, caller: Identity) -> User:
    """The caller's own account, by name; any other name is refused alike."""
    user = find_user(username)
    if user is None or user.public_id != caller.subject:
        raise Forbidden("you may only manage your own password")
    return user


def create_user(
    context: AuthContext,
    *,
    username: str,
    password: str | None,
    role: str = "normal",
    **profile: Any,
) -> User:
    """A new account; `profile` holds the optional columns (email, first_name, ...).

    The unique constraint decides between two concurrent registrations of one name.
    """
    if username_exists(username):
        raise UsernameTaken(username)
    _check_picture_reference(profile.get("profile_picture"), None)
    user = User(
        username=username,
        password_hash=context.passwords.hash(password) if password is not None else None,
        role=role,
        **profile,
    )
    db.session.add(user)
    outbox.record_created(user)
    _commit_unique_username(username)
    return user


def _commit_unique_username(username: str) -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if username_exists(username):
            raise UsernameTaken(username) from None
        raise


def ensure_admin(
    context: AuthContext, username: str, password: str, *, email: str | None = None
) -> bool:
    """Create superuser `username` unless a user of that name exists; True if created."""
    if not USERNAME_PATTERN.match(username):
        raise ValueError(f"invalid admin username {username!r}")
    problem = password_problem(password, username)
    if problem:
        raise ValueError(f"the admin password {problem}")
    try:
        create_user(context, username=username, password=password, role="superuser", email=email)
    except UsernameTaken:
        return False
    return True


def list_users(window: Window) -> Page[User]:
    """One page of users in sign-up order; PageNotFound past the last page (an empty
    listing has one empty page)."""
    page = paginate(db.session, select(User).order_by(User.id), window)
    if page.number > page.pages:
        raise PageNotFound(page.size, page.pages)
    return page


def update_profile(
    context: AuthContext, username: str, caller: Identity, changes: dict[str, Any]
) -> User:
    """Change profile fields. A new username revokes the user's tokens: other services
    may trust the `username` claim, and the old name may be taken by someone else."""
    user = changeable_user(username, caller)
    unknown = set(changes) - PROFILE_FIELDS
    if unknown:  # the schema lets only profile fields through; this guards the function
        raise InvalidInput(dict.fromkeys(sorted(unknown), "cannot be changed here"))
    renamed = "username" in changes and changes["username"] != user.username
    if renamed and username_exists(changes["username"]):
        raise UsernameTaken(changes["username"])
    old_picture = user.profile_picture
    if "profile_picture" in changes:
        _check_picture_reference(changes["profile_picture"], old_picture)
    before = outbox.directory_snapshot(user)
    for name, value in changes.items():
        setattr(user, name, value)
    if renamed:
        sessions.revoke_everything(context, user)
    outbox.record_updated(user, before)
    _commit_unique_username(user.username)
    if old_picture and old_picture != user.profile_picture:
        context.pictures.delete(old_picture)
    return user


@dataclass(frozen=True)
class AuthModes:
    password: bool
    oauth: list[str]  # the providers of the linked sign-in accounts


def auth_modes(username: str, caller: Identity) -> AuthModes:
    user = visible_user(username, caller)
    providers = db.session.scalars(
        select(LinkedIdentity.provider)
        .where(LinkedIdentity.user_id == user.id)
        .order_by(LinkedIdentity.provider)
    ).all()
    return AuthModes(password=user.password_hash is not None, oauth=list(providers))


# Staff management


def privileges_view(user: User) -> dict[str, Any]:
    """`{"state": role}`, with the privileges for staff (as stored, empty lists too)."""
    view: dict[str, Any] = {"state": user.role}
    if user.role == "staff":
        view["privileges"] = dict(user.privileges or {})
    return view


def privileges_of(username: str, caller: Identity) -> dict[str, Any]:
    if not caller.is_staff:
        raise Forbidden("staff only")
    user = find_user(username)
    if user is None:
        raise UserNotFound(username)
    return privileges_view(user)


def set_privileges(
    context: AuthContext,
    username: str,
    caller: Identity,
    state: str,
    privileges: dict[str, list[str]] | None,
) -> dict[str, Any]:
    """Set role and privileges (superusers only). The user's tokens are revoked: their
    claims would be stale, and the new ones come with the next login or refresh."""
    if not caller.is_superuser:
        raise Forbidden("only a superuser may change privileges")
    user = find_user(username)
    if user is None:
        raise UserNotFound(username)
    if user.public_id == caller.subject:
        raise NotForYourself("change the role of")
    apply_role(context, user, state, privileges)
    db.session.commit()
    return privileges_view(user)


def apply_role(
    context: AuthContext, user: User, state: str, privileges: dict[str, list[str]] | None
) -> None:
    """Give `user` a role (and, for staff, privileges); revokes their tokens. No commit."""
    before = outbox.directory_snapshot(user)
    user.role = state
    user.privileges = normalized_privileges(privileges or {}) if state == "staff" else {}
    sessions.revoke_everything(context, user)
    outbox.record_updated(user, before)


def normalized_privileges(privileges: dict[str, list[str]]) -> dict[str, list[str]]:
    """Actions in create, read, update, delete order, each once."""
    order = list(ACTIONS.values())
    return {model: [a for a in order if a in set(actions)] for model, actions in privileges.items()}


def set_active(context: AuthContext, username: str, caller: Identity, active: bool) -> None:
    """Disable (every token revoked at once) or enable an account."""
    user = managed_user(username, caller, "disable" if not active else "enable")
    if user.is_active != active:
        outbox.record_user_event(user, USER_ENABLED if active else USER_DISABLED)
    user.is_active = active
    if not active:
        sessions.revoke_everything(context, user)
    db.session.commit()


def delete_user(context: AuthContext, username: str, caller: Identity) -> None:
    """Delete an account: its tokens, sessions, reset tokens, identities and picture go."""
    user = managed_user(username, caller, "delete")
    picture = user.profile_picture
    sessions.revoke_everything(context, user)
    db.session.delete(user)
    outbox.record_deleted(user)
    db.session.commit()
    if picture:
        context.pictures.delete(picture)


# Passwords


def authenticate(context: AuthContext, username: str, password: str, address: str) -> User:
    """The active user these credentials belong to; records the login.

    Failures are counted per username and per client address; at a limit the attempt
    is refused before the password is looked at (TooManyAttempts).
    """
    throttle = context.login_throttle()
    throttle.check(username, address)
    user = find_user(username)
    stored = user.password_hash if user is not None else None
    matches = context.passwords.verify(stored, password)  # hashes even for no user
    if user is None or stored is None or not matches or not user.is_active:
        throttle.count(username, address)
        raise InvalidCredentials()
    if context.passwords.needs_rehash(stored):
        user.password_hash = context.passwords.hash(password)
    user.last_login = utcnow()
    db.session.commit()
    return user


def create_password(context: AuthContext, username: str, caller: Identity, password: str) -> None:
    """A first password for an account that signs in another way."""
    user = own_user(username, caller)
    if user.password_hash is not None:
        raise PasswordExists()
    _check_new_password("password", password, user)
    user.password_hash = context.passwords.hash(password)
    db.session.commit()


def change_password(
    context: AuthContext,
    username: str,
    caller: Identity,
    old_password: str,
    new_password: str,
    address: str,
) -> None:
    """Change the password; every token of the user is revoked, this caller's too."""
    user = own_user(username, caller)
    if user.password_hash is None:
        raise NoPassword()
    throttle = context.login_throttle()
    throttle.check(username, address)
    if not context.passwords.verify(user.password_hash, old_password):
        throttle.count(username, address)
        raise WrongPassword()
    _check_new_password("newPassword", new_password, user)
    user.password_hash = context.passwords.hash(new_password)
    sessions.revoke_everything(context, user)
    db.session.commit()


def _check_new_password(field: str, password: str, user: User) -> None:
    problem = password_problem(password, user.username)
    if problem:
        raise InvalidInput({field: problem})


# Profile pictures


def store_picture(context: AuthContext, user: User, stream: BinaryIO | None) -> None:
    """Store an uploaded picture of `user` (whom the caller may change: see
    `changeable_user`); the old stored one goes.

    media_service checks and cleans the file (NotAnImage, ImageTooLarge, PictureTooLarge
    when it refuses); only a missing or empty file, or one over PROFILE_PICTURE_MAX_BYTES,
    is refused here, without a call. When media_service cannot store the picture
    (MediaUnavailable), nothing changes.
    """
    if stream is None:
        raise MissingPicture()
    size = _stream_size(stream)
    if size == 0:
        raise MissingPicture(empty=True)
    max_bytes = context.settings.picture_max_bytes
    if size > max_bytes:
        raise PictureTooLarge(max_bytes)
    user_id, username, owner = user.id, user.username, user.public_id
    # End the request's (read-only) transaction: no database connection is held while
    # media_service works.
    db.session.commit()
    url = context.pictures.save(owner, stream, size)
    _replace_picture(context, user_id, username, url, store_made_new=True)


def picture_from_provider(
    context: AuthContext, username: str, caller: Identity, provider: str
) -> None:
    """Take the picture of a linked identity of this provider as the profile picture."""
    user = changeable_user(username, caller)
    url = db.session.scalar(
        select(LinkedIdentity.picture_url).where(
            LinkedIdentity.user_id == user.id, LinkedIdentity.provider == provider
        )
    )
    if not url:
        raise NoLinkedPicture(provider)
    _replace_picture(context, user.id, user.username, url, store_made_new=False)


def _replace_picture(
    context: AuthContext, user_id: int, username: str, url: str, *, store_made_new: bool
) -> None:
    """Point the user at `url`; the stored picture it replaces goes after the commit. If
    the user cannot be written (gone meanwhile, or the commit fails), a picture the store
    has just made for it goes instead."""
    try:
        # The row is locked until the commit, so of two concurrent uploads the second
        # sees (and deletes) the first one's picture.
        user = db.session.get(User, user_id, with_for_update=True, populate_existing=True)
        if user is None:
            raise UserNotFound(username)
        old = user.profile_picture
        user.profile_picture = url
        db.session.commit()
    except Exception:
        db.session.rollback()
        if store_made_new:
            context.pictures.delete(url)
        raise
    if old and old != url:
        context.pictures.delete(old)


def _check_picture_reference(new: str | None, current: str | None) -> None:
    """A stored picture's URL comes only from an upload: set by hand, it would make the
    store delete another user's picture when this user's picture is replaced."""
    if new != current and stored_key(new) is not None:
        raise InvalidInput({"profilePicture": "upload a picture to store it"})


def _stream_size(stream: BinaryIO) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


# Tokens


def obtain_token_pair(
    context: AuthContext, username: str, password: str, address: str
) -> dict[str, str]:
    return sessions.start_session(context, authenticate(context, username, password, address))


def refresh_token_pair(context: AuthContext, refresh_token: str) -> dict[str, str]:
    return sessions.rotate(context, refresh_token)


def caller_account(context: AuthContext, caller: Identity, claims: dict[str, Any]) -> User:
    """The account behind a verified user token, refused when the token was revoked
    (disabled, deleted, signed out) even if the request did not come through the gateway."""
    if caller.is_service:
        raise Forbidden("a user token is required")
    user = user_by_subject(caller.subject)
    if user is None or not user.is_active or sessions.token_revoked(context, user, claims):
        raise InvalidToken("token revoked")
    return user


def register_api_user(context: AuthContext, username: str, password: str, email: str | None) -> str:
    """The image API's registration: an ordinary account and its first API token."""
    problem = password_problem(password, username)
    if problem:
        raise InvalidInput({"password": problem})
    user = create_user(context, username=username, password=password, email=email)
    return sessions.issue_api_token(context, user)


def obtain_api_token(context: AuthContext, username: str, password: str, address: str) -> str:
    return sessions.issue_api_token(context, authenticate(context, username, password, address))


def issue_service_token(context: AuthContext, service: str) -> dict[str, Any]:
    """A token for another service's own calls; the caller has proven the shared secret."""
    issued = context.tokens.service_token(service)
    return {"access": issued.token, "expires_in": context.tokens.access_ttl}


def check_service_secret(context: AuthContext, presented: str | None) -> None:
    """Raise unless `presented` is the configured `SERVICE_SECRET` (constant-time compare)."""
    configured = context.service_secret
    if not configured:
        raise ServiceTokensDisabled()
    if presented is None or not hmac.compare_digest(
        presented.encode("utf-8"), configured.encode("utf-8")
    ):
        raise InvalidServiceSecret()
