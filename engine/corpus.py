"""Where training text comes from: the built-in world, Python's own docs, an upload, the hub."""
from __future__ import annotations

import functools
import os
import socket

from .config import UserError
from .limits import MAX_UPLOAD_BYTES
from .world import World

SOURCES = ("world", "python-docs", "upload", "hub")


@functools.lru_cache(maxsize=4)
def world_text(seed: int = 0, n_docs: int = 3000) -> str:
    return World(seed).corpus(n_docs)


@functools.lru_cache(maxsize=1)
def python_docs_text() -> str:
    """Real English prose: the help topics that ship inside the running Python (about 465 KB)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k].strip() for k in sorted(topics)) + "\n"


def read_upload(data: bytes, name: str = "upload") -> str:
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


def hub_text(name: str, column: str = "text", max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """Text from a Hugging Face dataset, streamed until max_bytes. A local folder or file path
    goes through the same `datasets` code (that is how it is tested). Offline, fail at once:
    `datasets` would otherwise retry a hub name for about 23 s."""
    import datasets

    name = name.strip()
    if not name:
        raise UserError("Type a dataset name such as 'roneneldan/TinyStories'.")
    if os.path.exists(name):
        ds = datasets.load_dataset(name if os.path.isdir(name) else _builder(name),
                                   data_files=None if os.path.isdir(name) else name,
                                   split="train", streaming=True)
    else:
        if not hub_reachable():
            raise UserError(f"Cannot reach the Hugging Face hub from this server, so '{name}' "
                            "cannot be loaded. Use a built-in corpus or upload a text file.")
        try:
            ds = datasets.load_dataset(name, split="train", streaming=True)
        except Exception as e:  # the hub's errors are many and vary by version
            raise UserError(f"Could not load '{name}' from the hub: {e}") from None
    parts, size = [], 0
    for row in ds:
        if column not in row:
            raise UserError(f"'{name}' has no column '{column}'; it has: {', '.join(row)}.")
        parts.append(str(row[column]))
        size += len(parts[-1])
        if size >= max_bytes:
            break
    if not parts:
        raise UserError(f"'{name}' has no rows.")
    return "\n".join(parts)


def _builder(path: str) -> str:
    ext = path.rsplit(".", 1)[-1].lower()
    return {"txt": "text", "jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet"}.get(ext, "text")


def hub_reachable(timeout: float = 1.5) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or \
            os.environ.get("HF_DATASETS_OFFLINE", "0") not in ("0", "", "false"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False
