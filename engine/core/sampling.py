"""Reading a trained model: generate text, next-token probabilities, filling masks."""
from __future__ import annotations

import torch

from engine.core.models import GLOBAL_RNG


def context_length(model) -> int:
    c = model.config
    return getattr(c, "n_positions", None) or c.max_position_embeddings


def _ids(tok, text: str) -> torch.Tensor:
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    return ids


@torch.no_grad()
def generate(model, tok, prompt: str, max_new_tokens: int = 200, temperature: float = 0.8,
             top_k: int = 0, top_p: float = 1.0, seed: int | None = None) -> str:
    """Continue `prompt` with transformers' `generate`; greedy when temperature is 0.
    Past the context window it slides: each chunk sees the last half-window of text."""
    ctx = context_length(model)
    ids = _ids(tok, prompt)[:, -(ctx // 2):] if prompt else torch.tensor([[tok.eos_token_id]])
    sample = temperature > 0
    kw = dict(do_sample=sample, temperature=temperature if sample else None,
              top_k=(top_k or None) if sample else None, top_p=top_p if sample else None,
              pad_token_id=tok.pad_token_id, eos_token_id=None)
    new: list[int] = []
    with GLOBAL_RNG:
        if seed is not None:
            torch.manual_seed(seed)
        while len(new) < max_new_tokens:
            window = torch.cat([ids, torch.tensor([new], dtype=torch.long)], 1)[:, -(ctx // 2):]
            step = min(max_new_tokens - len(new), ctx - window.shape[1])
            out = model.generate(window, attention_mask=torch.ones_like(window), max_new_tokens=step, **kw)
            new += out[0, window.shape[1]:].tolist()
    return tok.decode(new, skip_special_tokens=True)


@torch.no_grad()
def next_token_probs(model, tok, prompt: str, k: int = 10) -> list[tuple[str, float]]:
    """The k most likely next tokens after `prompt` and their probabilities."""
    ctx = context_length(model)
    ids = _ids(tok, prompt)[:, -ctx:] if prompt else torch.tensor([[tok.eos_token_id]])
    probs = model(ids).logits[0, -1].float().softmax(-1)
    p, i = probs.topk(min(k, probs.numel()))
    return [(tok.decode([j]), float(q)) for j, q in zip(i.tolist(), p)]


@torch.no_grad()
def fill_masks(model, tok, text: str, k: int = 5) -> list[tuple[int, list[tuple[str, float]]]]:
    """For each <mask> in `text`, the k most likely tokens (a BERT-style model's guesses)."""
    ids = _ids(tok, text)[:, : context_length(model)]
    probs = model(ids).logits[0].float().softmax(-1)
    out = []
    for pos in (ids[0] == tok.mask_token_id).nonzero().flatten().tolist():
        p, i = probs[pos].topk(min(k, probs.shape[-1]))
        out.append((pos, [(tok.decode([j]), float(q)) for j, q in zip(i.tolist(), p)]))
    return out
