"""media_service's request and response shapes (marshmallow 4), with the seed's wire names."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

OWNER = validate.Length(min=1, max=64)
PURPOSE = validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,31}$", error="1 to 32 of a-z, 0-9 and '-'")


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


class ImageUploadSchema(Schema):
    image = fields.Raw(
        required=True,
        metadata={"type": "string", "format": "binary", "description": "JPEG, PNG, GIF or WebP"},
    )


class SignedUrlQuerySchema(Schema):
    expires = fields.String(metadata={"description": "expiry of a signed URL (Unix time)"})
    signature = fields.String(metadata={"description": "HMAC-SHA256 of the key and expiry"})


class FilePartSchema(Schema):
    file = fields.Raw(
        required=True,
        metadata={"type": "string", "format": "binary", "description": "JPEG, PNG, GIF or WebP"},
    )


class FileFieldsSchema(Schema):
    owner = fields.String(required=True, validate=OWNER)
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
