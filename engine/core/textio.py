"""Reading what people upload: UTF-8 text with a clear message for every way it can be wrong, and
JSON Lines read line by line, so one bad line is reported by its number instead of losing the file."""
from __future__ import annotations

import json
from typing import Iterator

from engine.core.config import UserError
from engine.core.limits import MAX_UPLOAD_BYTES


def read_text(data: bytes, name: str = "upload") -> str:
    """Decode an uploaded text file or say precisely why it cannot be used."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise UserError(f"{name} is {len(data) / 1e6:.1f} MB; the limit is "
                        f"{MAX_UPLOAD_BYTES / 1e6:.0f} MB. Upload a shorter excerpt.")
    if not data.strip():
        raise UserError(f"{name} is empty. Upload a UTF-8 text file with some prose in it.")
    if b"\x00" in data[:65536]:
        raise UserError(f"{name} looks like a binary file, not text. Upload a UTF-8 .txt file.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(f"{name} is not UTF-8 text (byte {e.start} cannot be decoded). "
                        "Save it as UTF-8 and upload it again.") from None
    return text.replace("\r\n", "\n")


def json_lines(data: bytes | str) -> Iterator[tuple[int, dict | None]]:
    """(line number, the line's JSON object, or None when the line is not one) for every
    non-blank line. Raises UserError when the bytes are not UTF-8."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UserError("The file is not UTF-8 text. Save it as UTF-8 JSON Lines and upload it again.") from None
    for i, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):   # RecursionError: a line nested thousands deep
            row = None
        yield i, row if isinstance(row, dict) else None


def said(value, role: str) -> str:
    """A string, or the content of the first message of `role` in a chat message list (TRL's
    conversational format)."""
    if isinstance(value, str):
        return value
    return str(next(m["content"] for m in value if m["role"] == role))
