"""What the image API's end-to-end tests share: the document's client calls, pictures,
and gunicorn workers' peak memory."""

from __future__ import annotations

import io
import os
import subprocess
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any, BinaryIO

import psutil
import requests
from PIL import Image

from tests.e2e.e2e_helpers import PASSWORD, TIMEOUT

MIB = 1024 * 1024
UPLOAD_TIMEOUT = 120


# The document's client


def token_header(token: str) -> dict[str, str]:
    """The document's scheme: `Authorization: Token <token>`."""
    return {"Authorization": f"Token {token}"}


def register(gateway_url: str) -> tuple[str, str]:
    """`POST /register/` as the document shows it; (username, token)."""
    username = f"img_{uuid.uuid4().hex[:10]}"
    response = requests.post(
        f"{gateway_url}/register/",
        json={"username": username, "password": PASSWORD},
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"token"}
    return username, str(response.json()["token"])


def send_image(
    gateway_url: str,
    token: str,
    picture: bytes | BinaryIO,
    *,
    image_id: int | None = None,
    filename: str = "naruto.jpg",
    content_type: str = "image/jpeg",
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """`http --form POST /images/ image@<file>` (or PUT /images/<id>/ with `image_id`),
    with `headers` added (a `Host` of the test's choosing, for one)."""
    path = "/images/" if image_id is None else f"/images/{image_id}/"
    method = "POST" if image_id is None else "PUT"
    return requests.request(
        method,
        f"{gateway_url}{path}",
        files={"image": (filename, picture, content_type)},
        headers={**token_header(token), **(headers or {})},
        timeout=UPLOAD_TIMEOUT,
    )


class StreamedForm:
    """A multipart/form-data body of one file part, read from disk while it is sent: the
    client never holds the file in memory (requests sends an object with `read` and a
    length in blocks, under a Content-Length)."""

    def __init__(self, field: str, path: Path, filename: str, content_type: str) -> None:
        self.boundary = uuid.uuid4().hex
        head = (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.length = len(head) + path.stat().st_size + len(tail)
        self.parts: list[BinaryIO] = [io.BytesIO(head), path.open("rb"), io.BytesIO(tail)]

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            return b"".join(part.read() for part in self.parts)
        while self.parts:
            chunk = self.parts[0].read(size)
            if chunk:
                return chunk
            self.parts.pop(0).close()
        return b""

    def close(self) -> None:
        for part in self.parts:
            part.close()


def send_file(gateway_url: str, token: str, path: Path, content_type: str) -> requests.Response:
    """`POST /images/` of a file on disk, streamed from it."""
    form = StreamedForm("image", path, path.name, content_type)
    try:
        return requests.post(
            f"{gateway_url}/images/",
            data=form,
            headers={**token_header(token), "Content-Type": form.content_type},
            timeout=UPLOAD_TIMEOUT,
        )
    finally:
        form.close()


def photo(
    size: tuple[int, int] = (320, 240), color: Any = "orange", image_format: str = "JPEG"
) -> bytes:
    """A real picture, encoded by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, image_format)
    return out.getvalue()


def decoded(body: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(body))
    picture.load()
    return picture


def noise_png(path: Path, side: int) -> int:
    """A PNG of random RGB noise, stored uncompressed: about 3 * side**2 bytes, every one
    of them real pixel data. Returns the file's size."""
    picture = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    picture.save(path, "PNG", compress_level=0)
    return path.stat().st_size


# Gunicorn workers' memory


def worker_pids(master: subprocess.Popen[bytes]) -> list[int]:
    """The gunicorn master's workers (its children)."""
    return [child.pid for child in psutil.Process(master.pid).children()]


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident size) of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


def restart_peak(pid: int) -> int:
    """Start the process's VmHWM again from its current size (Linux: `5` to clear_refs);
    returns the size (KiB) the peak is now measured from. Where the kernel refuses, the
    old, higher peak stays and growth measured from here is overestimated, never hidden."""
    with suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    return status_kib(pid)["VmRSS"]
