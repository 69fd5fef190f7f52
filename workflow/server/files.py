"""The dashboard's files: served whole, gzipped once in memory for the clients that accept it, with an ETag."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

from fastapi import Request
from fastapi.responses import FileResponse, Response


def accepts_gzip(request: Request) -> bool:
    """Return whether the request's Accept-Encoding takes gzip (a q of 0 refuses it)."""
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, parameters = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            quality = parameters.strip().removeprefix("q=").strip() if parameters.strip().startswith("q=") else "1"
            try:
                return float(quality) > 0
            except ValueError:
                return False
    return False


class StaticFile:
    """A file the server sends as it is on disk or gzipped (compressed on first use, once per process)."""

    def __init__(self, path: Path, media_type: str, headers: dict[str, str] | None = None) -> None:
        self.path = path
        self.media_type = media_type
        self.headers = headers or {}
        self._gzipped: tuple[str, bytes] | None = None  # (the ETag of the file it was made of, its bytes)
        self._lock = asyncio.Lock()

    def etag(self) -> str:
        """Return the file's ETag, from its size and modification time."""
        found = self.path.stat()
        return f'"{found.st_mtime_ns:x}-{found.st_size:x}"'

    async def response(self, request: Request) -> Response:
        """Return the file for the request: gzipped when the client takes gzip, 304 when its copy is current."""
        etag = self.etag()
        compressed = accepts_gzip(request)
        tag = f'{etag[:-1]}-gzip"' if compressed else etag
        headers = {**self.headers, "ETag": tag, "Vary": "Accept-Encoding"}
        if tag in (value.strip() for value in request.headers.get("if-none-match", "").split(",")):
            return Response(status_code=304, headers=headers)
        if not compressed:
            return FileResponse(self.path, media_type=self.media_type, headers=headers)
        async with self._lock:
            if self._gzipped is None or self._gzipped[0] != etag:
                body = await asyncio.to_thread(lambda: gzip.compress(self.path.read_bytes(), compresslevel=9, mtime=0))
                self._gzipped = (etag, body)
        return Response(self._gzipped[1], media_type=self.media_type, headers={**headers, "Content-Encoding": "gzip"})
