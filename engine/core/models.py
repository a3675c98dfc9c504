"""Model builders: transformers' own GPT-2 and BERT classes at toy sizes.

GPT-2 trains with ATTENTION, transformers' eager attention with the scores kept in bf16 (below),
registered with transformers under its own name: it returns the attention weights like eager, and a
saved model does not record it (from_pretrained gives the default, or "eager" when asked). SDPA in
bf16 was 1.6x slower on this CPU, its backward especially. GELU is the exact (erf) one, as in nanoGPT
and BERT: on this CPU the tanh approximation costs 2-4x as much in bf16 (issue 17, bench/bench_utilization.py).
"""
from __future__ import annotations

import threading

import torch
from transformers import (
    AttentionInterface,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    BertConfig,
    GPT2Config,
    LlamaConfig,
    PreTrainedModel,
)

# name -> (layers, heads, width): about 50k, 200k and 1M parameters without embeddings.
SIZES = {"50k": (2, 2, 48), "200k": (4, 4, 64), "1M": (5, 4, 128)}

# torch's global RNG is shared by every thread: whoever seeds it and draws from it (weight init,
# sampled generation) holds this lock, so concurrent jobs stay reproducible under their seeds.
GLOBAL_RNG = threading.RLock()

ATTENTION = "engine_eager"
_CAUSAL: dict = {}   # (q, k, dtype) -> additive causal mask: 0 where a query may look, the dtype's minimum elsewhere
_registered = False


def bf16_eager_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' eager attention, but the (B, H, T, T) scores, mask and softmax stay in the activations'
    dtype. Eager adds an fp32 mask to the bf16 scores, which turns them fp32 for the mask, the softmax and
    their backward and casts them back; the probabilities are rounded to bf16 for the AV matmul either way,
    so the output is the same (checked: identical logits in fp32 and bf16). Without padding the mask
    interface (sdpa's) passes no mask and a cached causal one is added: an add's backward costs nothing."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    w = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is None:
        q, k = w.shape[-2:]
        if getattr(module, "is_causal", True) and q > 1:
            m = _CAUSAL.get((q, k, w.dtype))
            if m is None:
                above = torch.ones(q, k, dtype=torch.bool).triu(k - q + 1)
                m = torch.zeros(q, k, dtype=w.dtype).masked_fill_(above, torch.finfo(w.dtype).min)
                _CAUSAL[(q, k, w.dtype)] = m
            w = w + m.to(w.device)
    elif attention_mask.dtype == torch.bool:   # True where a query may look (padding)
        w = w.masked_fill(~attention_mask, torch.finfo(w.dtype).min)
    else:
        w = w + attention_mask.to(w.dtype)
    w = torch.softmax(w, dim=-1).to(value.dtype)
    w = torch.nn.functional.dropout(w, p=dropout, training=module.training)
    return torch.matmul(w, value).transpose(1, 2), w


def _register_attention() -> None:
    """At the first build, not at import (masking_utils pulls in much of transformers). Idempotent."""
    global _registered
    if not _registered:
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
        AttentionInterface.register(ATTENTION, bf16_eager_attention)
        AttentionMaskInterface.register(ATTENTION, sdpa_mask)   # None when causal without padding, else bool
        _registered = True


def build_model(objective: str, vocab_size: int, n_layer: int, n_head: int, n_embd: int,
                block_size: int, seed: int, pad_id: int, eos_id: int, dropout: float = 0.0,
                arch: str = "gpt2") -> PreTrainedModel:
    """objective "clm" (arch "gpt2", or "llama": RoPE, RMSNorm, SwiGLU) or "mlm" (BERT)."""
    if n_embd % n_head:
        from engine.core.config import UserError
        raise UserError(f"Width {n_embd} is not divisible by {n_head} heads: pick a width that is.")
    if objective == "clm" and arch == "llama":
        # SwiGLU's three matrices at 8/3·d keep the MLP's parameters equal to GPT-2's 4·d two-matrix MLP.
        cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=n_embd, intermediate_size=int(8 * n_embd / 3),
                          num_hidden_layers=n_layer, num_attention_heads=n_head, num_key_value_heads=n_head,
                          max_position_embeddings=block_size, attention_dropout=dropout, tie_word_embeddings=True,
                          bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=pad_id)
        auto = AutoModelForCausalLM
    elif objective == "clm":
        cfg = GPT2Config(vocab_size=vocab_size, n_positions=block_size, n_embd=n_embd, n_layer=n_layer,
                         n_head=n_head, activation_function="gelu",
                         resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                         bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=pad_id)
        auto = AutoModelForCausalLM
    else:
        cfg = BertConfig(vocab_size=vocab_size, hidden_size=n_embd, num_hidden_layers=n_layer,
                         num_attention_heads=n_head, intermediate_size=4 * n_embd,
                         max_position_embeddings=block_size, type_vocab_size=1, hidden_act="gelu_pytorch_tanh",
                         hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, pad_token_id=pad_id)
        auto = AutoModelForMaskedLM
    with GLOBAL_RNG:
        torch.manual_seed(seed)
        attn = "eager"
        if objective == "clm" and arch == "gpt2":
            _register_attention()
            attn = ATTENTION
        return auto.from_config(cfg, attn_implementation=attn)


def count_params(n_layer: int, n_embd: int, vocab_size: int, block_size: int) -> int:
    """GPT-2 parameter count without building the model (12·L·d² plus biases, norms, embeddings)."""
    per_layer = 12 * n_embd * n_embd + 13 * n_embd
    return n_layer * per_layer + (vocab_size + block_size) * n_embd + 2 * n_embd
