"""Where training text comes from: the built-in world, Python's own docs, an upload, the hub."""
from __future__ import annotations

import functools
import os
import socket

from engine.core.config import UserError
from engine.core.limits import MAX_UPLOAD_BYTES
from engine.text.world import World

SOURCES = ("world", "python-docs", "upload", "hub")


@functools.lru_cache(maxsize=4)
def world_text(seed: int = 0, n_docs: int = 3000) -> str:
    return World(seed).corpus(n_docs)


@functools.lru_cache(maxsize=1)
def python_docs_text() -> str:
    """Real English prose: the help topics that ship inside the running Python (about 465 KB)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k].strip() for k in sorted(topics)) + "\n"


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
