"""The Data page's engine glue: its one URL config, the quality-model job, the tokenizer lab's
measurements, "does cleaning matter?" (two tiny GPTs through the one loop) and the sizes of
the datasets real models were trained on, each with its source."""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import time
import typing

import torch
from tokenizers import Tokenizer

from .cleaning import TEXT_JUNK, CleaningConfig, TrainTexts, precision_recall
from .config import StageConfig, UserError, field
from .corpus import hub_text
from .crawl import CrawlConfig, count_tokens, to_dataset
from .limits import MAX_JOB_SECONDS, MAX_UPLOAD_BYTES
from .loop import LoopSettings, train
from .models import SIZES, build_model
from .pretrain import windows
from .quality import QualityConfig, quality_filter
from .tokenizer import SPECIALS, char_tokenizer, encode


@dataclasses.dataclass
class CompareConfig(StageConfig):
    budget: int = field(400_000, "characters of training text for each model: raw and cleaned are cut to "
                                 "the same length", range=(10_000, 5_000_000))
    size: str = field("50k", "model size preset (both models are this size)", choices=tuple(SIZES))
    block_size: int = field(64, "context length in characters", range=(16, 256))
    batch_size: int = field(16, "sequences per step", range=(1, 128))
    steps: int = field(400, "training steps for each model: the same token budget", range=(10, 20_000))
    lr: float = field(3e-3, "peak learning rate", range=(1e-5, 1.0))
    eval_every: int = field(25, "steps between evaluations on the held-out text", range=(1, 20_000))
    max_seconds: int = field(120, "time limit for each model", range=(5, MAX_JOB_SECONDS // 2))
    seed: int = field(0, "initial weights and batch order, the same for both models")


@dataclasses.dataclass
class LabConfig(StageConfig):
    vocab_size: int = field(1024, "BPE vocabulary size in the tokenizer lab", range=(260, 8192))
    hub_name: str = field("", "Hugging Face dataset used as the upload source")


# ---------------------------------------------------------------- the page's one config

# ui.read_config writes one config to the URL, and the page's engine configs share field names
# (seed in three of them), so they are flattened into one: a part's fields keep their names,
# with the part's prefix, or the part's name where a name is already taken.
PARTS = {"crawl": (CrawlConfig, ""), "cleaning": (CleaningConfig, ""), "quality": (QualityConfig, "quality_"),
         "compare": (CompareConfig, "compare_"), "lab": (LabConfig, "")}


# The raw-vs-cleaned training is the page's one slow part.
PRESETS = {"PRESETS": {"quick demo": dict(compare_size="50k", compare_steps=400, compare_max_seconds=120),
                       "thorough": dict(compare_size="200k", compare_steps=1500, compare_max_seconds=150)},
           "PRESET_NOTES": {"quick demo": "two 50k models, 400 steps each: about 20 s",
                            "thorough": "two 200k models, 1,500 steps each: a clearer gap"}}


def _flatten(parts: dict) -> type:
    names: dict[tuple[str, str], str] = {}
    fields = []
    for part, (cls, prefix) in parts.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            flat = prefix + f.name
            if flat in names.values():
                flat = f"{part}_{f.name}"
            names[part, f.name] = flat
            fields.append((flat, hints[f.name], dataclasses.field(default=f.default, metadata=f.metadata)))

    def part(self, which: str) -> StageConfig:
        cls = parts[which][0]
        return cls(**{f.name: getattr(self, names[which, f.name]) for f in dataclasses.fields(cls)})

    return dataclasses.make_dataclass("DataConfig", fields, bases=(StageConfig,), namespace={"part": part, **PRESETS})


DataConfig = _flatten(PARTS)


# ---------------------------------------------------------------- sources

def hub_documents(name: str, column: str = "text"):
    """A Hugging Face dataset's text as upload documents: blank-line paragraphs when it has
    them, else lines (hub_text joins rows with a newline). Offline it fails at once."""
    text = hub_text(name, column, max_bytes=MAX_UPLOAD_BYTES)
    docs = [d.strip() for d in re.split(r"\n\s*\n" if "\n\n" in text else r"\n", text) if d.strip()]
    return to_dataset(docs, "upload", "unlabelled")


def source_table(crawl, kept) -> list[dict]:
    """Documents, words and tokens per source from the crawl's `tokens` column (counted once,
    by the caller), and how many of them `kept` (the cleaned dataset) still holds."""
    rows: dict[str, dict] = {}
    for text, source, n in zip(crawl["text"], crawl["source"], crawl["tokens"]):
        r = rows.setdefault(source, {"source": source, "documents": 0, "words": 0, "tokens": 0})
        r["documents"] += 1
        r["words"] += len(text.split())
        r["tokens"] += n
        r.setdefault("documents kept", 0)
        r.setdefault("tokens kept", 0)
    for source, n in zip(kept["source"], kept["tokens"]):
        rows[source]["documents kept"] += 1
        rows[source]["tokens kept"] += n
    return sorted(rows.values(), key=lambda r: -r["documents"])


def with_tokens(crawl):
    """The crawl with each document's WordPiece token count, as the cleaning funnel counts them."""
    return crawl.add_column("tokens", count_tokens(crawl["text"]))


# ---------------------------------------------------------------- model-based quality filter

class _Stopped(Exception):
    pass


def quality_job(crawl, cfg: QualityConfig, job, max_seconds: float = MAX_JOB_SECONDS) -> None:
    """Embed and score the crawl in a job; the page reads P(junk) from job.info and applies
    its threshold itself, so moving the threshold needs no new job. Stop and the time limit are
    honoured between embedding batches (quality_filter has no flags of its own; its progress
    hook is the way in)."""
    start = time.monotonic()

    def progress(fraction: float, _stage: str) -> None:
        job.info["progress"] = fraction
        if job.should_stop():
            raise _Stopped
        if time.monotonic() - start > max_seconds:
            raise UserError(f"Embedding stopped at the time limit of {max_seconds:.0f} s ({fraction:.0%} done): "
                            "the server is busy. Try a smaller crawl or fewer tokens per document.")

    try:
        res = quality_filter(crawl, cfg, progress=progress)
    except _Stopped:
        return
    job.info.update(p_junk=res.p_junk, train_ids=res.train_ids, seconds=res.seconds)


def quality_score(labels: list[str], ids: list[int], p_junk: list[float], train_ids: list[int],
                  threshold: float) -> dict:
    """The quality model's row for the precision/recall table, on the documents it did not train on."""
    seen = set(train_ids)
    held = [i for i, d in enumerate(ids) if d not in seen]
    return {"filter": "quality_model", **precision_recall([p_junk[i] > threshold for i in held],
                                                          [labels[i] for i in held], TEXT_JUNK)}


# ---------------------------------------------------------------- tokenizer lab

LAB_VOCABS = (260, 512, 1024, 2048, 4096, 8192)  # 260: the 256 bytes and 4 specials, no merges
LAB_CHARS = 250_000  # mixture text to train the lab's tokenizer on, and as much again to measure it


def mixture(crawl) -> list[tuple[str, str]]:
    """(source, text) of the chosen sources' own documents in crawl order (shuffled, so the
    sources mix in their weights); junk and copies left out."""
    return [(s, t) for t, s, lab in zip(crawl["text"], crawl["source"], crawl["label"]) if lab in ("clean", "pii")]


def _sample(docs: list[str], chars: int) -> str:
    out, n = [], 0
    for d in docs:
        if n >= chars:
            break
        out.append(d)
        n += len(d)
    return "\n\n".join(out)


def split_mixture(docs: list[tuple[str, str]], chars: int) -> tuple[str, str]:
    """(train, test): alternate documents, each side up to `chars`, so the tokenizer is
    measured on text it was not trained on."""
    texts = [t for _, t in docs]
    return _sample(texts[0::2], chars), _sample(texts[1::2], chars)


def tokens_per_word(tok, docs: list[tuple[str, str]], chars: int = 100_000) -> list[dict]:
    """Tokens per whitespace word for each source: prose packs into fewer tokens than code."""
    rows = []
    for source in dict.fromkeys(s for s, _ in docs):
        text = _sample([t for s, t in docs if s == source], chars)
        words = max(len(text.split()), 1)
        rows.append({"source": source, "words": words, "tokens per word (BPE)": len(encode(tok, text)) / words,
                     "tokens per word (WordPiece)": sum(count_tokens(text.splitlines())) / words})
    return rows


def truncate_bpe(big, vocab: int):
    """A byte-level BPE tokenizer cut to `vocab` entries. BPE learns its merges greedily, one at
    a time, whatever the target size, so the first k merges of a big training are what a
    training to the smaller size learns: cutting is exact, and much cheaper than retraining."""
    from transformers import PreTrainedTokenizerFast

    spec = json.loads(big.backend_tokenizer.to_str())
    merges = spec["model"]["merges"]
    base = len(spec["model"]["vocab"]) - len(merges)  # the specials and 256 bytes come before the merges
    spec["model"]["vocab"] = {t: i for t, i in spec["model"]["vocab"].items() if i < vocab}
    spec["model"]["merges"] = merges[:max(vocab - base, 0)]
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), **SPECIALS)


def vocab_sweep(big, test_text: str, width: int, vocabs=LAB_VOCABS) -> list[dict]:
    """For each vocabulary size: tokens the unseen test text becomes (sequence length) and
    the embedding matrix's parameters (vocab x width): the trade-off a vocabulary size sets."""
    rows = []
    for v in vocabs:
        n = len(encode(truncate_bpe(big, v), test_text))
        rows.append({"vocab": v, "tokens": n, "chars per token": len(test_text) / n,
                     "embedding parameters": v * width})
    return rows


def token_spans(tok, text: str) -> list[tuple[str, int]]:
    """(piece of the text, token id) in order. A byte-level token can be part of one character
    (an emoji is several bytes); it then shares the character with its neighbours, shown once."""
    enc = tok.backend_tokenizer.encode(text, add_special_tokens=False)
    out, end = [], 0
    for tid, (a, b) in zip(enc.ids, enc.offsets):
        out.append((text[max(a, end):b], tid))
        end = max(end, b)
    return out


# ---------------------------------------------------------------- does cleaning matter?

RUNS = ("raw", "cleaned")


class _Tagged:
    """One run's reporter inside the job: records carry the run's name and its own step,
    while `step` counts across both runs so the job's progress bar spans the whole job."""

    def __init__(self, job, run: str, offset: int):
        self.job, self.run, self.offset = job, run, offset

    def emit(self, record: dict) -> None:
        self.job.emit({**record, "run": self.run, "run_step": record["step"], "step": record["step"] + self.offset})

    def should_stop(self) -> bool:
        return self.job.should_stop()

    def wait_if_paused(self) -> None:
        self.job.wait_if_paused()


def compare(cfg: CompareConfig, texts: TrainTexts, job) -> None:
    """Train two identical tiny GPTs (same initial weights, steps and batch positions) through the
    one loop, one on the raw crawl text, one on the cleaned text, one after the other so they
    do not slow each other down. Both are scored on the same clean held-out text with the same
    character tokenizer, so their losses are comparable. Finals go to job.info["final"]."""
    T, B = cfg.block_size, cfg.batch_size
    # One vocabulary for both: every character of either text or the held-out text.
    tok = char_tokenizer(texts.raw + texts.cleaned + texts.heldout)
    val = torch.tensor(encode(tok, texts.heldout), dtype=torch.long)
    train_ids = {name: torch.tensor(encode(tok, getattr(texts, name)), dtype=torch.long) for name in RUNS}
    short = [f"{name} text ({len(ids)})" for name, ids in (("held-out", val), *train_ids.items()) if len(ids) <= 2 * T]
    if short:
        raise UserError(f"Too little text to train with a context of {T}: {', '.join(short)} characters. Keep more "
                        "documents (loosen the filters, or a bigger crawl) or raise the budget.")
    n_eval = min(64, (len(val) - T) // max(1, T // 2) + 1)
    starts = torch.linspace(0, len(val) - T, n_eval).long()
    val_batches = [windows(val, starts[i:i + B], T) for i in range(0, n_eval, B)]
    L, H, D = SIZES[cfg.size]
    # One untrained model, copied for each run: build_model seeds torch's global RNG, which other
    # jobs' threads also draw from (any nn.Linear constructor), so two builds can differ.
    untrained = build_model("clm", len(tok), L, H, D, T, cfg.seed, tok.pad_token_id, tok.eos_token_id)
    job.info.update(vocab_size=len(tok), uniform_loss=math.log(len(tok)), train_chars=texts.budget,
                    heldout_chars=len(val), note=texts.note, final={})
    for k, name in enumerate(RUNS):
        ids = train_ids[name]
        model = copy.deepcopy(untrained)
        gen = torch.Generator().manual_seed(cfg.seed)

        def next_batch(step: int, ids=ids, gen=gen) -> dict:
            x = windows(ids, torch.randint(len(ids) - T, (B,), generator=gen), T)
            return {"input_ids": x, "labels": x}  # the model shifts labels by one itself

        def evaluate(step: int, final: bool, model=model) -> dict:
            losses = [model(input_ids=x, labels=x).loss.item() for x in val_batches]
            return {"val_loss": sum(losses) / len(losses)}

        settings = LoopSettings(steps=cfg.steps, lr=cfg.lr, warmup_steps=min(50, cfg.steps // 10),
                                eval_every=cfg.eval_every, max_seconds=cfg.max_seconds)
        result = train(model, lambda m, b: m(**b).loss, next_batch, settings, _Tagged(job, name, k * cfg.steps),
                       evaluate)
        if result.status == "diverged":
            raise UserError(f"The {name} model: {result.message}")
        if result.status == "time limit":  # the other model would get a different budget: no fair comparison
            raise UserError(f"The {name} model {result.message}. Both must train the same steps: lower the steps "
                            "or raise the time limit.")
        if job.should_stop():
            return
        final = next(r["val_loss"] for r in reversed(job.records) if r.get("run") == name and "val_loss" in r)
        job.info["final"] = {**job.info["final"], name: final}


# ---------------------------------------------------------------- scale in context

# Sizes as the papers state them; "tokens" is the common axis, converted (about) where a paper
# gave bytes or words. Token counts depend on the tokenizer: compare orders of magnitude only.
SCALE = [
    {"dataset": "BERT: BooksCorpus + English Wikipedia", "published": "800M + 2,500M words",
     "tokens": 3.3e9 * 1.3, "how": "3.3B words at about 1.3 subword tokens per word (our conversion)",
     "source": "Devlin et al. 2019, BERT, §3.1"},
    {"dataset": "GPT-3: Common Crawl after filtering", "published": "570 GB (from 45 TB compressed before filtering)",
     "tokens": 410e9, "how": "410B BPE tokens as the paper states (Table 2.2)",
     "source": "Brown et al. 2020, Language Models are Few-Shot Learners, §2.2 and Table 2.2"},
    {"dataset": "C4 (T5)", "published": "about 750 GB",
     "tokens": 156e9, "how": "about 156B tokens, as counted by Dodge et al. 2021 (Table 1)",
     "source": "Raffel et al. 2020, T5, §2.2; Dodge et al. 2021, Documenting Large Webtext Corpora"},
    {"dataset": "The Pile", "published": "825 GiB (about 886 GB)",
     "tokens": 300e9, "how": "about 300B GPT-NeoX tokens: Pythia's 299.9B training tokens were just under one epoch",
     "source": "Gao et al. 2020, The Pile; Biderman et al. 2023, Pythia"},
    {"dataset": "RefinedWeb: public extract", "published": "600B tokens",
     "tokens": 600e9, "how": "as stated", "source": "Penedo et al. 2023, The RefinedWeb Dataset for Falcon LLM"},
    {"dataset": "RefinedWeb: full", "published": "about 5T tokens",
     "tokens": 5e12, "how": "as stated", "source": "Penedo et al. 2023, The RefinedWeb Dataset for Falcon LLM"},
    {"dataset": "FineWeb", "published": "15T tokens (from 96 Common Crawl snapshots)",
     "tokens": 15e12, "how": "as stated (GPT-2 tokenizer)",
     "source": "Penedo et al. 2024, The FineWeb Datasets"},
    {"dataset": "Llama 3 pretraining data", "published": "over 15T tokens (15.6T for the 405B model)",
     "tokens": 15.6e12, "how": "as stated",
     "source": "Meta 2024, Introducing Meta Llama 3; Dubey et al. 2024, The Llama 3 Herd of Models"},
]

MISSTATEMENTS = [
    "**“GPT-3 was trained on 45 TB of text.”** 45 TB was Common Crawl *compressed, before filtering*; filtering "
    "left 570 GB (about 400B tokens). Training then drew 300B tokens from a weighted mix in which that filtered "
    "crawl was 60% (Brown et al. 2020, §2.2 and Table 2.2).",
    "**Parameters are not data.** GPT-3's 175B is parameters, not tokens. Llama 3 8B saw over 15T tokens: "
    "about 1,900 tokens per parameter, where Chinchilla's compute-optimal rule is about 20 (Hoffmann et al. 2022).",
    "**Raw is not released, released is not all.** RefinedWeb is about 5T tokens; the public extract is 600B. "
    "C4's 750 GB is *one month* of Common Crawl (April 2019) after cleaning, not the whole crawl.",
    "**GiB is not GB.** The Pile is 825 GiB, about 886 GB. And bytes are not tokens: how many tokens a byte "
    "makes depends on the tokenizer, so the token figures above are rough.",
]


def scale_rows(raw_tokens: int, clean_tokens: int) -> list[dict]:
    """This page's crawl (WordPiece tokens, counted) next to the published datasets."""
    ours = [{"dataset": "This page: the raw crawl", "published": f"{raw_tokens:,} tokens", "tokens": raw_tokens,
             "how": "counted with all-MiniLM-L6-v2's WordPiece", "source": "measured here"},
            {"dataset": "This page: after cleaning", "published": f"{clean_tokens:,} tokens",
             "tokens": clean_tokens, "how": "counted with all-MiniLM-L6-v2's WordPiece", "source": "measured here"}]
    return ours + SCALE
