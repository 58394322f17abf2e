"""media_service's HTTP API: thin flask-smorest blueprints over service.py."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from flask import Response, request, send_file
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from media_service import service
from media_service.imaging import CONTENT_TYPES
from media_service.models import Image, StoredFile
from media_service.origins import request_origin
from media_service.schemas import (
    FileUploadSchema,
    ImageListQuerySchema,
    ImageSchema,
    ImageUploadSchema,
    SignedUrlQuerySchema,
    StoredFileSchema,
    StoredImageSchema,
)
from media_service.settings import MediaSettings
from media_service.signing import UrlSigner
from media_service.storage import FileSystemStorage, Storage, is_valid_key, key_token
from servicekit import ApiError, Blueprint, require_identity, require_service
from servicekit.errors import DomainError, error_response
from servicekit.pagination import Page, page_window
from servicekit.settings import app_settings

log = logging.getLogger(__name__)

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
PUBLIC_MAX_AGE = 365 * 24 * 3600  # public files never change under their key
PAGINATION_HEADER = "X-Pagination"


images_blp = Blueprint(
    "images",
    __name__,
    url_prefix="/images",
    description="Your images (the image API): upload, list, read, replace, delete.",
)
media_blp = Blueprint(
    "media_files",
    __name__,
    url_prefix="/media",
    description="Stored files: users' images by signed URL, other files by unguessable URL.",
)
internal_blp = Blueprint(
    "internal_files",
    __name__,
    url_prefix="/internal/files",
    description="The file store of the other services (service tokens only; not routed).",
)


def error_answers(blueprint: Blueprint, *statuses: int) -> Callable[[Any], Any]:
    """Document a route's error answers (the suite's error body)."""

    def decorate(view: Any) -> Any:
        for status in statuses:
            view = blueprint.alt_response(status, response=HTTPStatus(status).name)(view)
        return view

    return decorate


@images_blp.before_request
def authenticate() -> None:
    """401 before anything of the request is read (OPTIONS reveals nothing); 503 before
    anything is stored when the answer's URLs could not be signed, 400 when they could
    not name the request's host."""
    if request.method != "OPTIONS":
        require_identity()
        url_signer()
        public_base()


@internal_blp.before_request
def services_only() -> None:
    if request.method != "OPTIONS":
        require_service()


# The image API


@images_blp.route("/", methods=["POST"])
@images_blp.arguments(ImageUploadSchema, location="files")
@images_blp.response(201, StoredImageSchema)
@error_answers(images_blp, 401, 409, 413, 422)
@images_blp.doc(security=BEARER)
def upload_image(files: dict[str, FileStorage]) -> dict[str, Any]:
    """Upload an image (multipart field `image`): JPEG, PNG, GIF or WebP.

    The picture is stored re-encoded, upright, without metadata (EXIF, GPS, comments)."""
    image = service.create_image(caller(), upload_of(files, "image"), storage(), settings())
    return image_body(image)


@images_blp.route("/", methods=["GET"])
@images_blp.arguments(ImageListQuerySchema, location="query")
@images_blp.response(200, ImageSchema(many=True), headers={PAGINATION_HEADER: "PAGINATION"})
@error_answers(images_blp, 401)
@images_blp.doc(security=BEARER)
def list_images(args: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Your images, oldest first; `page` and `page_size` (at most 1000), totals in the
    `X-Pagination` header. An empty list when you have none."""
    page = service.list_images(caller(), page_window(args, "page_size"))
    body = [image_body(image) for image in page.items]
    return body, {PAGINATION_HEADER: pagination_header(page)}


@images_blp.route("/<int:image_id>", methods=["GET"])
@images_blp.response(200, ImageSchema)
@error_answers(images_blp, 401, 404)
@images_blp.doc(security=BEARER)
def read_image(image_id: int) -> dict[str, Any]:
    """One of your images (404 for anyone else's)."""
    return image_body(service.owned_image(caller(), image_id))


@images_blp.route("/<int:image_id>", methods=["PUT"])
@images_blp.arguments(ImageUploadSchema, location="files")
@images_blp.response(201, StoredImageSchema)
@error_answers(images_blp, 401, 404, 413, 422)
@images_blp.doc(security=BEARER)
def replace_image(files: dict[str, FileStorage], image_id: int) -> dict[str, Any]:
    """Replace the picture of one of your images (the document answers 201). The answer's
    URLs serve the new picture; the old URLs stop working."""
    upload = upload_of(files, "image")
    image = service.replace_image(caller(), image_id, upload, storage(), settings())
    return image_body(image)


@images_blp.route("/<int:image_id>", methods=["DELETE"])
@images_blp.response(204)
@error_answers(images_blp, 401, 404)
@images_blp.doc(security=BEARER)
def delete_image(image_id: int) -> None:
    """Delete one of your images, its file and thumbnail; its URLs stop working."""
    service.delete_image(caller(), image_id, storage())


# Files by URL


@media_blp.route("/<path:key>", methods=["GET"])
@media_blp.arguments(SignedUrlQuerySchema, location="query")
@media_blp.response(200, {"type": "string", "format": "binary"}, content_type="image/*")
@media_blp.alt_response(206, description="A byte range (`Range`)")
@media_blp.alt_response(304, description="Not modified (`If-None-Match`, `If-Modified-Since`)")
@media_blp.alt_response(403, description="Signature missing, wrong or expired")
@media_blp.alt_response(404, description="No such file")
@media_blp.alt_response(412, description="`If-Match` names another version (no body)")
@media_blp.alt_response(416, description="Range not satisfiable")
def media_file(query: dict[str, str], key: str) -> Response:
    """A stored file. Users' images and thumbnails need their URL's signature; files of
    other services are public under their unguessable key. Conditional requests and
    byte ranges are answered."""
    if not is_valid_key(key):
        raise service.FileNotFound()
    expires = None
    if not key.startswith("files/"):
        expires = url_signer().check(key, query.get("expires"), query.get("signature"), time.time())
    path = storage().local_path(key)
    if path is None:
        raise service.FileNotFound()
    return file_response(path, key, expires)


def file_response(path: Any, key: str, expires: int | None) -> Response:
    max_age = PUBLIC_MAX_AGE if expires is None else max(0, expires - int(time.time()))
    ignore_unsupported_range()
    response = send_file(
        path,
        mimetype=CONTENT_TYPES[key.rsplit(".", 1)[-1]],
        conditional=True,
        etag=key_token(key),
        max_age=max_age,
    )
    if response.status_code == 412:
        # A failed precondition carries no representation (RFC 9110 13.1.1): werkzeug
        # leaves the file in the body.
        response.close()
        response.set_data(b"")
        response.headers.pop("Content-Type", None)
    response.cache_control.public = expires is None  # send_file marks every file public
    if expires is not None:
        response.cache_control.private = True
    response.cache_control.immutable = True
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def ignore_unsupported_range() -> None:
    """Serve the whole file for a `Range` of another unit than bytes, or of several byte
    ranges (no multipart/byteranges here): a server must ignore what it does not support,
    and 416 would wrongly say the ranges are outside the file."""
    header = request.environ.get("HTTP_RANGE")
    if header is None:
        return
    unit, _, ranges = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in ranges:
        del request.environ["HTTP_RANGE"]


# The file store of the other services


@internal_blp.route("", methods=["POST"])
@internal_blp.arguments(FileUploadSchema, location="multipart")
@internal_blp.response(201, StoredFileSchema)
@error_answers(internal_blp, 401, 403, 413, 422)
@internal_blp.doc(security=BEARER)
def store_file(form: dict[str, Any]) -> dict[str, Any]:
    """Store an image for an owner of the calling service; answers its public URL."""
    record = service.store_file(
        require_service().subject,
        form["owner"],
        form["purpose"],
        upload_of(form, "file"),
        storage(),
        settings(),
    )
    return file_body(record)


@internal_blp.route("/<path:key>", methods=["DELETE"])
@internal_blp.response(204)
@error_answers(internal_blp, 401, 403, 404)
@internal_blp.doc(security=BEARER)
def delete_file(key: str) -> None:
    """Delete a file the calling service stored (404 for any other); its URL stops
    working at once."""
    service.delete_file(require_service().subject, key, storage())


blueprints = [images_blp, media_blp, internal_blp]


# Helpers


def caller() -> str:
    return require_identity().subject


def settings() -> MediaSettings:
    return app_settings(MediaSettings)


def storage() -> Storage:
    return FileSystemStorage(settings().storage_dir)


def url_signer() -> UrlSigner:
    """The signer of image URLs; 503 when `MEDIA_URL_SECRET` is not set."""
    configured = settings()
    if configured.url_secret is None:
        raise ApiError(503, "media URL signing is not configured", "service_unavailable")
    return UrlSigner(configured.url_secret.encode(), configured.url_ttl, configured.url_window)


def upload_of(files: dict[str, Any], field: str) -> service.Upload:
    file = files[field]
    return service.Upload(stream=file.stream, filename=file.filename or "", field=field)


def public_base() -> str:
    """Where clients reach the suite: `MEDIA_PUBLIC_URL`, else the scheme and host the
    client used (as the gateway forwards them, else this request's) when
    `MEDIA_ALLOWED_HOSTS` admits the host: 400 `bad_host` or `bad_scheme` otherwise."""
    configured = settings()
    if configured.public_base is not None:
        return configured.public_base
    if not configured.allowed_hosts:
        raise ApiError(503, "media URLs are not configured", "service_unavailable")
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
    host = request.headers.get("X-Forwarded-Host", request.headers.get("Host", ""))
    try:
        return request_origin(scheme, host, configured.host_allow_list)
    except DomainError:
        unusable = {"host": host[:200], "scheme": scheme[:20]}
        log.warning("image API request refused: unusable host or scheme", extra=unusable)
        raise


def image_body(image: Image) -> dict[str, Any]:
    signer = url_signer()
    now = time.time()
    base = public_base()

    def signed_url(key: str) -> str:
        return f"{base}/media/{key}?{signer.query(key, now)}"

    return {
        "id": image.id,
        "url": signed_url(image.key),
        "thumbnail_url": signed_url(image.thumbnail_key),
        "name": image.original_name,
        "content_type": image.content_type,
        "size": image.size,
        "width": image.width,
        "height": image.height,
        "expires": datetime.fromtimestamp(signer.expiry(now), UTC),
        "created": image.created_at,
        "updated": image.updated_at,
    }


def file_body(record: StoredFile) -> dict[str, Any]:
    return {
        "key": record.key,
        "url": f"/media/{record.key}",
        "owner": record.owner,
        "purpose": record.purpose,
        "content_type": record.content_type,
        "size": record.size,
        "width": record.width,
        "height": record.height,
    }


def pagination_header(page: Page[Image]) -> str:
    """The `X-Pagination` header: totals, and where this page stands among the others
    (`page`, `previous_page`, `next_page` only for a page that exists)."""
    metadata: dict[str, int] = {"total": page.total}
    if page.total == 0:
        return json.dumps({**metadata, "total_pages": 0})
    metadata.update(total_pages=page.pages, first_page=1, last_page=page.pages)
    if page.number <= page.pages:
        metadata["page"] = page.number
        if page.number > 1:
            metadata["previous_page"] = page.number - 1
        if page.number < page.pages:
            metadata["next_page"] = page.number + 1
    return json.dumps(metadata)


def body_too_large(_error: RequestEntityTooLarge) -> Response:
    """A request body over MAX_CONTENT_LENGTH, refused before it is read: the same answer
    as a file over the limit."""
    return error_response(service.FileTooLarge(settings().max_bytes))
