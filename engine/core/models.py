"""Model builders: transformers' own GPT-2 and BERT classes at toy sizes.

Eager attention so attentions can be read out (SDPA returns none) and because eager
under bf16 autocast was the fastest CPU setting measured (DESIGN.md); GELU with the
tanh approximation is GPT-2's own activation, faster than the default `gelu_new`.
"""
from __future__ import annotations

import threading

import torch
from transformers import (
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
                         n_head=n_head, activation_function="gelu_pytorch_tanh",
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
        return auto.from_config(cfg, attn_implementation="eager")


def count_params(n_layer: int, n_embd: int, vocab_size: int, block_size: int) -> int:
    """GPT-2 parameter count without building the model (12·L·d² plus biases, norms, embeddings)."""
    per_layer = 12 * n_embd * n_embd + 13 * n_embd
    return n_layer * per_layer + (vocab_size + block_size) * n_embd + 2 * n_embd
