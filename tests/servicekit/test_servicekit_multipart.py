"""MultipartBody: a streamed multipart/form-data body that a real form parser reads back."""

from __future__ import annotations

import io

from werkzeug.formparser import parse_form_data
from werkzeug.test import EnvironBuilder

from servicekit.http import MultipartBody


def parsed(body: MultipartBody) -> tuple[dict[str, str], dict[str, tuple[str, str, bytes]]]:
    data = b"".join(body)
    assert len(data) == len(body)
    environ = EnvironBuilder(
        method="POST", input_stream=io.BytesIO(data), content_type=body.content_type,
        content_length=len(data),
    ).get_environ()  # fmt: skip
    _, form, files = parse_form_data(environ)
    uploads = {name: (f.filename or "", f.mimetype, f.read()) for name, f in files.items()}
    return dict(form), uploads


def test_fields_and_file_come_back_as_sent() -> None:
    payload = bytes(range(256)) * 1000
    body = MultipartBody(
        {"owner": "u-1", "purpose": "profile-picture"}, "file", io.BytesIO(payload), len(payload),
        filename="picture", content_type="image/png",
    )  # fmt: skip
    form, files = parsed(body)
    assert form == {"owner": "u-1", "purpose": "profile-picture"}
    assert files == {"file": ("picture", "image/png", payload)}


def test_the_body_is_read_in_blocks_not_whole() -> None:
    payload = b"x" * 300_000
    body = MultipartBody({}, "file", io.BytesIO(payload), len(payload))
    blocks = [len(block) for block in body]
    assert max(blocks) <= 64 * 1024 and sum(blocks) == len(body)


def test_a_name_cannot_break_out_of_its_header() -> None:
    def body() -> MultipartBody:
        payload = io.BytesIO(b"data")
        return MultipartBody(
            {'a"\r\nX-Injected: 1': "v"}, "file", payload, 4,
            filename='evil"\r\nContent-Type: text/html',
        )  # fmt: skip

    data = b"".join(body())
    assert b"\r\nX-Injected" not in data and b"\r\nContent-Type: text/html" not in data
    form, files = parsed(body())
    assert list(form.values()) == ["v"]
    assert files["file"][2] == b"data"


def test_reads_of_any_size_cross_the_parts() -> None:
    payload = b"y" * 200_000
    body = MultipartBody({"owner": "u-1"}, "file", io.BytesIO(payload), len(payload))
    first = body.read(10)
    assert body.read(0) == b""
    rest = body.read()
    assert len(first + rest) == len(body) and body.read(10) == b""
