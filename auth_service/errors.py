"""auth_service's refusals: each exception carries the HTTP answer it stands for
(servicekit.errors.DomainError), so nothing maps them anywhere else."""

from __future__ import annotations

from typing import Any

from servicekit.errors import DomainError
from servicekit.files import FileTooLarge

# media_service's refusals of a picture are the file store's own (servicekit.files).
from servicekit.files import ImageTooLarge as ImageTooLarge
from servicekit.files import MediaUnavailable as MediaUnavailable
from servicekit.files import NotAnImage as NotAnImage

PICTURE_FIELD = "profilePicture"  # the multipart field of a picture upload
RESET_TOKEN_REFUSED = "token is invalid, expired or already used. Please get a new token"


class UsernameTaken(DomainError):
    status, code, message = 422, "username_taken", "This username already exists"

    def __init__(self, username: str) -> None:
        super().__init__()
        self.username = username

    def body(self) -> dict[str, Any]:  # the seed's body
        return {"errors": {"username": "This username already exists"}}


class UserNotVisible(DomainError):
    """A normal user asked for someone else's record (or one that does not exist)."""

    status, code, message = 403, "forbidden", "you may only see your own record"

    def __init__(self, username: str) -> None:
        super().__init__()
        self.username = username


class UserNotFound(DomainError):
    status, code, message = 404, "not_found", "no such user"

    def __init__(self, username: str) -> None:
        super().__init__()
        self.username = username


class InvalidCredentials(DomainError):
    """Unknown user, wrong password, no password, or a disabled account: one answer."""

    status, code, message = 401, "invalid_credentials", "invalid credentials"


class InvalidToken(DomainError):
    """`InvalidToken("token expired")`: the message says what is wrong with the token."""

    status, code, message = 401, "invalid_token", "invalid token"


class RevocationUnavailable(DomainError):
    """The revocation store cannot be asked or written, so a token cannot be vouched for."""

    status, code, message = 503, "service_unavailable", "token revocation store unavailable"


class ServiceTokensDisabled(DomainError):
    """No `SERVICE_SECRET` is configured."""

    status, code, message = 503, "service_unavailable", "service tokens are not configured"


class InvalidServiceSecret(DomainError):
    status, code, message = 401, "unauthorized", "invalid service secret"


class Forbidden(DomainError):
    """`Forbidden("staff only")`: the caller is known but may not do this."""

    status, code, message = 403, "forbidden", "forbidden"


class NotForYourself(DomainError):
    """Disabling, deleting or changing the role of one's own account (a lock-out risk)."""

    status, code = 422, "own_account"

    def __init__(self, action: str) -> None:
        super().__init__(f"you cannot {action} your own account")


class InvalidInput(DomainError):
    """A field's value is refused by a rule that needs more than the schema knows."""

    status, code, message = 400, "validation_error", "invalid input"

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors=errors)


class PageNotFound(DomainError):
    status, code, message = 400, "page_not_found", "This page does not exist"

    def __init__(self, page_size: int, pages: int) -> None:
        super().__init__()
        self.page_size = page_size
        self.pages = pages

    def body(self) -> dict[str, Any]:  # the seed's body
        return {"message": self.detail, "pageSize": self.page_size, "noOfPages": self.pages}


class PasswordExists(DomainError):
    """`POST .../password/` for an account that has a password already."""

    status, code = 422, "password_exists"
    message = "this account has a password already: change it with PUT"


class NoPassword(DomainError):
    """`PUT .../password/` for an account that has no password to change."""

    status, code = 422, "no_password"
    message = "this account has no password yet: create one with POST"


class WrongPassword(DomainError):
    """The old password of a password change does not match."""

    status, code, message = 422, "wrong_password", "the old password is not correct"

    def __init__(self) -> None:
        super().__init__(errors={"oldPassword": "is not correct"})


class InvalidResetToken(DomainError):
    """Unknown, expired or already used; one answer for all three."""

    status, code, message = 422, "invalid_reset_token", RESET_TOKEN_REFUSED

    def body(self) -> dict[str, Any]:  # the seed's body
        return {"error": {"resetToken": self.detail}}


class TooManyAttempts(DomainError):
    status, code, message = 429, "rate_limited", "too many failed attempts: try again later"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class NoLinkedPicture(DomainError):
    status, code = 422, "no_linked_identity"

    def __init__(self, provider: str) -> None:
        super().__init__(f"no linked {provider} account with a picture")


class PictureTooLarge(FileTooLarge):
    """Over auth_service's limit (`limit` bytes), or over media_service's (`limit` None)."""

    def __init__(self, limit: int | None) -> None:
        super().__init__(limit, "picture")


class MissingPicture(DomainError):
    """No file uploaded, or (`empty`) an empty one."""

    status, code = 400, "validation_error"

    def __init__(self, *, empty: bool = False) -> None:
        if empty:
            super().__init__("the uploaded picture is empty", errors={PICTURE_FIELD: "empty file"})
        else:
            super().__init__(
                f"no picture uploaded: send it as the multipart file field {PICTURE_FIELD!r}",
                errors={PICTURE_FIELD: "missing required field"},
            )
