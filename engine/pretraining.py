"""Pretraining: next-token (GPT-style) or masked-token (BERT-style) prediction on a corpus.

GPT-2 learns p(x_t | x_<t): every position predicts the token after it, looking left only.
BERT learns p(x_masked | everything else): about 15% of tokens are hidden (80% as <mask>,
10% random, 10% unchanged, Devlin et al. 2019, section 3.1) and predicted from both sides.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import random

import torch
from transformers import DataCollatorForLanguageModeling

from engine.core import limits
from engine.core.config import StageConfig, UserError, field
from engine.core.loop import LoopSettings, train
from engine.core.models import SIZES, build_model, count_params
from engine.core.report import Reporter, StageResult
from engine.core.runs import Trained
from engine.core.sampling import generate
from engine.core.tokenizer import encode, train_tokenizer
from engine.text import corpus


@dataclasses.dataclass
class PretrainConfig(StageConfig):
    # The defaults ARE the quick demo: a first Train finishes within 30 s on a 2-core machine.
    PRESETS = {"quick demo": dict(size="200k", block_size=64, batch_size=16, lr=3e-3, steps=600, warmup=30,
                                  max_seconds=90),
               "standard": dict(size="200k", block_size=64, batch_size=16, lr=2e-3, steps=1500, warmup=50,
                                max_seconds=180),
               "thorough": dict(size="1M", block_size=64, batch_size=16, lr=1e-3, steps=3000, warmup=100,
                                max_seconds=300)}
    PRESET_NOTES = {"quick demo": "200k parameters, 600 steps: readable stories in about 25 s",
                    "standard": "200k parameters, 1,500 steps: a lower loss in about a minute",
                    "thorough": "1M parameters, 3,000 steps: lower still, in a few minutes"}
    corpus: str = field("world", "text to train on", choices=corpus.SOURCES)
    hub_name: str = field("", "Hugging Face dataset name (corpus=hub)", private=True)
    tokenizer: str = field("char", "characters, or byte-level BPE trained on the corpus", choices=("char", "bpe"))
    vocab_size: int = field(512, "BPE vocabulary size", range=(260, 8192), shown=(260, 4096))
    objective: str = field("clm", "clm: next token (GPT); mlm: masked token (BERT); both",
                           choices=("clm", "mlm", "both"))
    arch: str = field("gpt2", "gpt2, or llama (RoPE, RMSNorm, SwiGLU); clm only", choices=("gpt2", "llama"))
    size: str = field("200k", "model size preset, or custom", choices=(*SIZES, "custom"))
    n_layer: int = field(4, "layers (size=custom)", range=(1, 12))
    n_head: int = field(4, "attention heads (size=custom)", range=(1, 16))
    n_embd: int = field(64, "width (size=custom)", range=(8, 512))
    block_size: int = field(64, "context length in tokens", range=(8, 512), options=(16, 32, 64, 128, 256))
    batch_size: int = field(16, "sequences per step", range=(1, 256), shown=(1, 128))
    lr: float = field(3e-3, "peak learning rate", range=(1e-6, 10.0),
                      options=(1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0, 10.0))
    steps: int = field(600, "training steps", range=(1, 100_000), shown=(10, 20_000))
    warmup: int = field(30, "warmup steps before cosine decay", range=(0, 100_000), shown=(0, 5000))
    max_seconds: int = field(90, "time limit in seconds", range=(1, limits.MAX_JOB_SECONDS),
                             shown=(5, int(limits.MAX_JOB_SECONDS)))
    mask_prob: float = field(0.15, "share of tokens masked (mlm)", range=(0.01, 0.9))
    eval_every: int = field(50, "steps between validation evaluations", range=(1, 100_000))
    sample_every: int = field(200, "steps between text samples", range=(1, 100_000))
    seed: int = field(0, "random seed: same seed and config give the same losses", shown=(0, 2**31 - 1))
    bf16: bool = field(True, "bfloat16 autocast: faster on CPUs with bf16 support; it changes the arithmetic "
                             "(losses agree with fp32 to about three decimals in the measurements here)")
    grad_checkpoint: bool = field(False, "recompute activations in the backward pass: less memory, more time")

    def shape(self) -> tuple[int, int, int]:
        return (self.n_layer, self.n_head, self.n_embd) if self.size == "custom" else SIZES[self.size]

    def objectives(self) -> list["PretrainConfig"]:
        """`both` runs as two jobs, one per objective, on the same data."""
        if self.objective != "both":
            return [self]
        return [self.replace(objective="clm"), self.replace(objective="mlm")]


@dataclasses.dataclass
class Data:
    tokenizer: object
    train: torch.Tensor
    val: torch.Tensor
    text_digest: str


def load_text(cfg: PretrainConfig, upload: str | None = None) -> str:
    if cfg.corpus == "world":
        return corpus.world_text()
    if cfg.corpus == "python-docs":
        return corpus.python_docs_text()
    if cfg.corpus == "hub":
        return corpus.hub_text(cfg.hub_name)
    if not upload:
        raise UserError("Choose a text file to upload first (or pick a built-in corpus).")
    return upload


def prepare(cfg: PretrainConfig, text: str) -> Data:
    digest = hashlib.sha1(text.encode()).hexdigest()
    return _prepare(text, digest, cfg.tokenizer, cfg.vocab_size if cfg.tokenizer == "bpe" else 0, cfg.block_size)


@functools.lru_cache(maxsize=8)
def _prepare(text: str, digest: str, kind: str, vocab_size: int, block_size: int) -> Data:
    tok = train_tokenizer(text, kind, vocab_size)
    ids = torch.tensor(encode(tok, text), dtype=torch.long)
    need = 10 * (block_size + 1)
    if len(ids) < need:
        raise UserError(f"The text is {len(ids)} tokens long; training with a context of {block_size} needs "
                        f"at least {need} (ten windows, one for validation). Use a longer text or a shorter context.")
    n_val = max(block_size + 1, len(ids) // 10)   # the last 10% is held out for validation
    return Data(tok, ids[:-n_val], ids[-n_val:], digest)


def windows(ids: torch.Tensor, starts: torch.Tensor, block: int) -> torch.Tensor:
    return torch.stack([ids[s:s + block] for s in starts.tolist()])


def fit(cfg: PretrainConfig, reporter: Reporter, upload: str | None = None, samples: bool = True) -> Trained:
    """Train one objective, reporting to `reporter`; with `samples`, text (or masked-token guesses)
    every cfg.sample_every steps and at the end."""
    assert cfg.objective in ("clm", "mlm"), "split `both` with cfg.objectives() first"
    data = prepare(cfg, load_text(cfg, upload))
    tok, T, B = data.tokenizer, cfg.block_size, cfg.batch_size
    L, H, D = cfg.shape()
    n_params = count_params(L, D, len(tok), T)
    if n_params > limits.MAX_PARAMS:
        raise UserError(f"A model of {n_params / 1e6:.1f}M parameters is too large to train here within the "
                        f"time limit (at most {limits.MAX_PARAMS / 1e6:.0f}M): pick fewer layers or a smaller width.")
    model = build_model(cfg.objective, len(tok), L, H, D, T, cfg.seed, tok.pad_token_id, tok.eos_token_id,
                        arch=cfg.arch)
    if cfg.grad_checkpoint:
        model.activation_checkpointing_enable()
    gen = torch.Generator().manual_seed(cfg.seed)
    collator = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=cfg.mask_prob, seed=cfg.seed) \
        if cfg.objective == "mlm" else None

    def make_batch(ids: torch.Tensor, starts: torch.Tensor) -> dict:
        x = windows(ids, starts, T)
        if collator is None:
            return {"input_ids": x, "labels": x}   # the model shifts labels by one itself
        return dict(collator(list(x)))

    def next_batch(step: int) -> dict:
        return make_batch(data.train, torch.randint(len(data.train) - T, (B,), generator=gen))

    # Fixed validation windows (and, for MLM, fixed masks) so every evaluation is comparable.
    n_eval = min(64, (len(data.val) - T) // max(1, T // 2) + 1)
    val_starts = torch.linspace(0, len(data.val) - T, n_eval).long()
    val_batches = [make_batch(data.val, val_starts[i:i + B]) for i in range(0, n_eval, B)]
    rng = random.Random(cfg.seed)

    def loss_fn(model, batch):
        return model(**batch).loss

    def evaluate(step: int, final: bool) -> dict:
        losses = [model(**b).loss.item() for b in val_batches]
        val = sum(losses) / len(losses)
        return {"eval_loss": val, "eval_perplexity": math.exp(min(val, 50))}

    def sample(step: int, final: bool):
        if not samples or (step % cfg.sample_every and not final):
            return
        start = rng.randrange(len(data.val) - T)
        if cfg.objective == "clm":
            prompt = tok.decode(data.val[start:start + min(16, T // 2)])
            text = generate(model, tok, prompt, max_new_tokens=120, temperature=0.8, seed=cfg.seed + step)
            reporter.add_sample({"step": step, "prompt": prompt, "text": text})
        else:
            reporter.add_sample({"step": step, **mask_demo(model, tok, data.val[start:start + T], rng)})

    facts = {"params": model.num_parameters(), "vocab_size": len(tok), "uniform_loss": math.log(len(tok)),
             "train_tokens": len(data.train), "val_tokens": len(data.val), "objective": cfg.objective,
             "text_digest": data.text_digest}
    reporter.set_info(**facts)
    settings = LoopSettings(steps=cfg.steps, lr=cfg.lr, warmup_steps=min(cfg.warmup, cfg.steps),
                            eval_every=cfg.eval_every, max_seconds=cfg.max_seconds, bf16=cfg.bf16)
    result = train(model, loss_fn, next_batch, settings, reporter, evaluate, after_eval=sample)
    if result.status == "diverged":
        raise UserError(result.message)
    return Trained(model.float().eval(), tok, result, facts)


def run(cfg: PretrainConfig, reporter: Reporter, upload: str | None = None, owner: str | None = None) -> StageResult:
    """The Pretraining page's job: train one objective and save it as a run of stage "pretrain"."""
    trained = fit(cfg, reporter, upload)
    key = cfg.key(trained.facts["text_digest"])
    return trained.save("pretrain", cfg.to_dict(), name=f"{cfg.objective}-{cfg.size}-{key[:6]}", owner=owner)


@torch.no_grad()
def mask_demo(model, tok, ids: torch.Tensor, rng: random.Random, share: float = 0.15) -> dict:
    """Hide some tokens of a real window and show the model's guesses: BERT's task, visibly."""
    ids = ids.clone()
    positions = sorted(rng.sample(range(len(ids)), max(1, int(share * len(ids)))))
    truth = ids[positions].tolist()
    ids[positions] = tok.mask_token_id
    guess = model(ids[None]).logits[0, positions].argmax(-1).tolist()
    return {"masked": tok.decode(ids), "truth": tok.convert_ids_to_tokens(truth),
            "guess": tok.convert_ids_to_tokens(guess),
            "correct": sum(a == b for a, b in zip(truth, guess)), "total": len(truth)}
