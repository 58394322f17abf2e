"""media_service's request and response shapes (marshmallow 4), with the seed's wire names."""

from __future__ import annotations

import re
from typing import Any, overload

from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.datastructures import FileStorage

from servicekit.pagination import PageArgs, page_size


class FullMatch(validate.Regexp):
    """A pattern the whole value must match: Python's `$` also matches before a final
    newline. (The pattern stays `^…$` in the OpenAPI document, where it means the same.)"""

    def __init__(self, pattern: str, *, error: str) -> None:
        super().__init__(pattern, error=error)
        self.whole = re.compile(pattern)

    @overload
    def __call__(self, value: str) -> str: ...

    @overload
    def __call__(self, value: bytes) -> bytes: ...

    def __call__(self, value: str | bytes) -> str | bytes:
        if not isinstance(value, str) or self.whole.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


OWNER = [
    validate.Length(min=1, max=64),
    FullMatch(r"^[^\x00-\x1f\x7f]*$", error="no control characters"),
]
PURPOSE = FullMatch(r"^[a-z0-9][a-z0-9-]{0,31}$", error="1 to 32 of a-z, 0-9 and '-'")


class ImageSchema(Schema):
    """An image as the document shows it (`id`, `url`), and what else is known of it."""

    id = fields.Integer(required=True)
    url = fields.String(
        required=True, metadata={"description": "signed URL of the image; valid until it expires"}
    )
    thumbnail_url = fields.String(
        required=True, metadata={"description": "signed URL of a downscaled copy (256 px)"}
    )
    name = fields.String(metadata={"description": "the uploaded file's name, for display"})
    content_type = fields.String()
    size = fields.Integer(metadata={"description": "bytes of the stored image"})
    width = fields.Integer()
    height = fields.Integer()
    expires = fields.DateTime(metadata={"description": "when the signed URLs stop working"})
    created = fields.DateTime()
    updated = fields.DateTime()


class StoredImageSchema(ImageSchema):
    """The answer to an upload or a replacement: the document's shape, with `image: null`."""

    image = fields.Constant(None, dump_only=True, allow_none=True)


class UploadedFile(fields.Field[FileStorage]):
    """A file part of a multipart form (a plain text field of that name is not one)."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"type": "string", "format": "binary", "description": "JPEG, PNG, GIF or WebP"}
        super().__init__(required=True, metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> FileStorage:
        if not isinstance(value, FileStorage):
            raise ValidationError("a file is required")
        return value


class ImageUploadSchema(Schema):
    image = UploadedFile()


class ImageListQuerySchema(PageArgs):
    """`page` and `page_size` of the image list (a size over 1000 is a 400)."""

    page_size = page_size(100, 1000)


class SignedUrlQuerySchema(Schema):
    expires = fields.String(metadata={"description": "expiry of a signed URL (Unix time)"})
    signature = fields.String(metadata={"description": "HMAC-SHA256 of the key and expiry"})


class FileUploadSchema(Schema):
    """The internal file store's multipart form: the file, and whose it is."""

    file = UploadedFile()
    owner = fields.String(
        required=True, validate=OWNER, metadata={"description": "opaque to media_service"}
    )
    purpose = fields.String(load_default="file", validate=PURPOSE)


class StoredFileSchema(Schema):
    key = fields.String(required=True)
    url = fields.String(required=True, metadata={"description": "public, unguessable URL"})
    owner = fields.String()
    purpose = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    width = fields.Integer()
    height = fields.Integer()
