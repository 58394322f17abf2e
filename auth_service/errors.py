"""auth_service's domain errors: what a request is refused for. api.py maps them to HTTP."""

from __future__ import annotations


class AuthError(Exception):
    """A request auth_service refuses; the subclass says why."""


class UsernameTaken(AuthError):
    pass


class UserNotVisible(AuthError):
    """A normal user asked for someone else's record (or one that does not exist)."""


class UserNotFound(AuthError):
    pass


class InvalidCredentials(AuthError):
    """Unknown user, wrong password, no password, or a disabled account: one answer."""


class InvalidToken(AuthError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RevocationUnavailable(AuthError):
    """The revocation store cannot be asked or written, so a token cannot be vouched for."""


class ServiceTokensDisabled(AuthError):
    """No `SERVICE_SECRET` is configured."""


class InvalidServiceSecret(AuthError):
    pass


class Forbidden(AuthError):
    """The caller is known but may not do this; `reason` says what is missing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotForYourself(AuthError):
    """Disabling, deleting or changing the role of one's own account (a lock-out risk)."""

    def __init__(self, action: str) -> None:
        super().__init__(action)
        self.action = action


class InvalidInput(AuthError):
    """A field's value is refused by a rule that needs more than the schema knows."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(str(errors))
        self.errors = errors


class PageNotFound(AuthError):
    def __init__(self, page_size: int, pages: int) -> None:
        super().__init__(page_size, pages)
        self.page_size = page_size
        self.pages = pages


class PasswordExists(AuthError):
    """`POST .../password/` for an account that has a password already."""


class NoPassword(AuthError):
    """`PUT .../password/` for an account that has no password to change."""


class WrongPassword(AuthError):
    """The old password of a password change does not match."""


class InvalidResetToken(AuthError):
    """Unknown, expired or already used; one answer for all three."""


class TooManyAttempts(AuthError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class NoLinkedPicture(AuthError):
    def __init__(self, provider: str) -> None:
        super().__init__(provider)
        self.provider = provider


class NotAnImage(AuthError):
    pass


class ImageTooLarge(AuthError):
    """More pixels or frames than media_service takes (`reason` is its own)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PictureTooLarge(AuthError):
    """Over auth_service's limit (`limit` bytes), or over media_service's (`limit` None)."""

    def __init__(self, limit: int | None) -> None:
        super().__init__(limit)
        self.limit = limit


class MissingPicture(AuthError):
    """No file uploaded, or (`empty`) an empty one."""

    def __init__(self, *, empty: bool = False) -> None:
        super().__init__(empty)
        self.empty = empty


class MediaUnavailable(AuthError):
    """media_service, which keeps the pictures, cannot be reached or failed."""
