"""Answers from a chat model to many prompts at once, greedy or sampled: what measuring, critiquing
and labelling all need."""
from __future__ import annotations

import torch

from engine.core.models import GLOBAL_RNG
from engine.core.sampling import context_length

TEMPERATURE = 1.0   # sampling temperature for revision candidates and preference pairs
MAX_NEW = 32        # tokens per answer, as sft.answer


@torch.no_grad()
def generate(model, tok, prompts: list[str], n: int = 1, seed: int | None = None, batch: int = 32) -> list[list[str]]:
    """n answers to each prompt in its chat template: greedy when seed is None, else sampled at
    TEMPERATURE. Prompts go through generate together, left-padded, grouped so that each gets the
    room sft.answer gives it (a prompt too long for MAX_NEW more tokens only with prompts as long):
    greedy answers are sft.answer's, tests/test_cai.py checks; 16 at once ran 16x faster."""
    ctx = context_length(model)
    ids = [tok(tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False),
               add_special_tokens=False)["input_ids"][-(ctx - 1):] for p in prompts]
    groups: dict[int, list[int]] = {}
    for i, x in enumerate(ids):
        groups.setdefault(len(x) if len(x) > ctx - MAX_NEW else 0, []).append(i)
    out: list[list[str]] = [[] for _ in prompts]
    for g, members in sorted(groups.items()):
        for b in range(0, len(members), batch):
            idx = members[b:b + batch]
            width = max(len(ids[i]) for i in idx)
            x = torch.tensor([[tok.pad_token_id] * (width - len(ids[i])) + ids[i] for i in idx])
            mask = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in idx])
            with GLOBAL_RNG:
                if seed is not None:
                    torch.manual_seed(seed + g * 1000 + b)
                y = model.generate(x, attention_mask=mask, max_new_tokens=min(MAX_NEW, ctx - width),
                                   do_sample=seed is not None, num_return_sequences=n,
                                   temperature=TEMPERATURE if seed is not None else None, top_k=None, top_p=None,
                                   eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
            texts = tok.batch_decode(y[:, width:], skip_special_tokens=True)
            for j, i in enumerate(idx):
                out[i] = [t.strip() for t in texts[j * n:(j + 1) * n]]
    return out


