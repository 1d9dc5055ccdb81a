"""Evidence files, stored content-addressed on disk.

A file lives at <root>/<sha256[:2]>/<sha256>: the same content uploaded
twice is stored once, and a name never comes from the user, so no upload
can choose where it lands. The database keeps one Document row per upload
(name, type, size, product); this module only checks and stores bytes.

What is accepted is deliberately narrow: the few formats a dossier needs,
none of them active content a browser would run. The extension AND the
leading bytes must agree, so a renamed executable or HTML page is refused.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

MAX_SIZE = 10 * 1024 * 1024  # bytes, per file


@dataclass(frozen=True)
class FileType:
    content_type: str
    magic: bytes
    zip_member: str | None = None  # Office files are zips: a part only that format has


_DOCX = FileType("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                 b"PK\x03\x04", "word/document.xml")
_XLSX = FileType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 b"PK\x03\x04", "xl/workbook.xml")
_JPEG = FileType("image/jpeg", b"\xff\xd8\xff")

# extension -> what the file must be
ALLOWED: dict[str, FileType] = {
    "pdf": FileType("application/pdf", b"%PDF-"),
    "jpg": _JPEG,
    "jpeg": _JPEG,
    "png": FileType("image/png", b"\x89PNG\r\n\x1a\n"),
    "docx": _DOCX,
    "xlsx": _XLSX,
}
# The only types a download is ever labelled with; anything else is sent
# as application/octet-stream.
SAFE_CONTENT_TYPES = frozenset(t.content_type for t in ALLOWED.values())

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UNSAFE_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f\"\\/]")


class DocumentRefused(ValueError):
    """The upload is not accepted. `reason` is one of: empty, too_big,
    type, content, name; the web layer words it for the user."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def clean_filename(filename: str) -> str:
    """The name to keep and offer on download: the last path part, no
    control characters or quotes, at most 200 characters (extension kept)."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = _UNSAFE_NAME_CHARS.sub("", name).strip().lstrip(".")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:190] + dot + ext[:9]) if dot else name[:200]
    return name or "tai-lieu"


def check_upload(filename: str, data: bytes) -> str:
    """The content type for an accepted upload; raises DocumentRefused."""
    if not data:
        raise DocumentRefused("empty")
    if len(data) > MAX_SIZE:
        raise DocumentRefused("too_big")
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    kind = ALLOWED.get(extension)
    if kind is None:
        raise DocumentRefused("type")
    if not data.startswith(kind.magic) or (kind.zip_member and not _zip_has(data, kind.zip_member)):
        raise DocumentRefused("content")
    return kind.content_type


def _zip_has(data: bytes, member: str) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return member in archive.namelist()
    except zipfile.BadZipFile:
        return False


class DocumentStore:
    """Bytes by their sha256 under one root directory."""

    def __init__(self, root: str | os.PathLike):
        # Absolute, so a relative setting means the working directory for
        # writing and reading alike (Flask's send_file would otherwise take
        # a relative path from the application package).
        self.root = Path(root).resolve()

    def path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256 or ""):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Store the bytes (once) and return their sha256."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write aside, then rename: a reader never sees a half-written file,
        # and two uploads of the same content racing both end with it whole.
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()
