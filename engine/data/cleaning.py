"""The cleaning pipeline: normalise, heuristic quality filters, exact and near-duplicate
removal, PII redaction. Stages are batched `datasets` maps and filters, as at scale; the two
deduplicators also walk the documents in order once, keeping the first of each group.

On a labelled crawl (engine.crawl) each filter is scored against the labels: a filter's
*positives* are the labels it exists to remove (see POSITIVES). Precision = of the documents
it flagged, the share that were positives; recall = of the positives that reached it, the
share it flagged. Heuristics are judged one by one on everything that reached them, so a
document failing two rules counts for both; the funnel and removal table credit only the
first rule that removed it. "all_filters" judges the whole run: every input document missing
from the output, against all junk labels (pii is not junk: it should come out redacted).
"""
from __future__ import annotations

import hashlib
import random
import re
import time
import unicodedata
import zlib
from dataclasses import dataclass

from engine.core.config import StageConfig, UserError, field
from engine.data.crawl import EMAIL_RE, JUNK, LABELS, TEXT_JUNK, count_tokens

# Gopher's stop words (Rae et al. 2021, App. A): real English prose uses at least two.
STOP_WORDS = frozenset("the be to of and that have with".split())
HEURISTICS = ("word_count", "word_length", "symbols", "line_punct", "stop_words", "repeated_lines")
POSITIVES = {**{h: TEXT_JUNK for h in HEURISTICS}, "any_heuristic": TEXT_JUNK,
             "exact_dedup": ("duplicate",), "near_dedup": ("duplicate", "near_duplicate"),
             "pii": ("pii",), "all_filters": JUNK}
# International (+44 20 7946 0958), bracketed area code ((555) 123-4567), or three digit groups
# (555-123-4567); two groups alone would be years ("2006-2009") in every copyright line.
PHONE_RE = re.compile(r"(?<![\w+])(?:\+\d{1,3}(?:[ .-]\d{2,8}){2,3}|\(\d{2,4}\) ?\d{3,4}[ .-]\d{3,4}"
                      r"|\d{2,4}[ .-]\d{3,4}[ .-]\d{3,4})(?![\w-])")
TERMINAL = ('.', '!', '?', '"', "'", '”', '’', '。', '！', '？')  # C4's "terminal punctuation mark"
SYMBOL_RE = re.compile(r"#|\.\.\.|…|[{}]|</?[A-Za-z!][^>]*>")


@dataclass
class CleaningConfig(StageConfig):
    normalize: bool = field(True, "NFC Unicode and tidy whitespace before anything else")
    heuristics: str = field(",".join(HEURISTICS), "comma-separated heuristic filters to apply")
    # Gopher = Rae et al. 2021, "Scaling Language Models", App. A (MassiveWeb quality filters and
    # repetition removal). FineWeb = Penedo et al. 2024. C4 = Raffel et al. 2020, §2.2.
    min_words: int = field(50, "fewer words: too short to be a document (Gopher)", range=(0, 100_000),
                           shown=(0, 1000))
    max_words: int = field(100_000, "more words: probably a dump (Gopher)", range=(1, 10_000_000))
    min_mean_word_len: float = field(3.0, "shorter mean word length: lists, tables (Gopher)",
                                     range=(0, 100), shown=(0.0, 10.0))
    max_mean_word_len: float = field(10.0, "longer: URLs, markup, no-space scripts (Gopher)",
                                     range=(0, 1000), shown=(3.0, 30.0))
    # Gopher: hash or ellipsis per word above 0.1. Our crawl is raw HTML, not extracted text,
    # so tags and the curly brackets C4 bans count as symbols too.
    max_symbol_ratio: float = field(0.1, "symbols (# … { } <tags>) per word (adapted from Gopher, which counts only "
                                    "# and …; C4 drops pages with {)",
                                    range=(0, 100), shown=(0.0, 1.0))
    # C4 keeps only lines ending in terminal punctuation; as a share of a document's lines, the
    # threshold is that of FineWeb's custom filter (§3.6).
    min_line_punct: float = field(0.12, "share of lines ending in . ! ? or a quote (C4, FineWeb)", range=(0, 1))
    min_stop_words: int = field(2, "distinct stop words (the, be, to, of, and, that, have, with) (Gopher)",
                                range=(0, 8))
    max_repeated_lines: float = field(0.3, "share of lines repeating an earlier line (Gopher)", range=(0, 1))
    # Gopher, C4 and FineWeb wrote these rules for web prose; code datasets (The Stack) use
    # others. On the default crawl they would drop about 40% of the stdlib's files, mostly for
    # lines not ending in punctuation. Turn on to see that happen.
    heuristics_on_code: bool = field(False, "apply the prose heuristics to stdlib-code documents too")
    exact_dedup: bool = field(True, "drop later copies with the same text hash")
    near_dedup: bool = field(True, "drop near-copies: MinHash + LSH (datasketch)")
    # Gopher: 13-gram Jaccard above 0.8; FineWeb: 5-grams, which also catch edits in short pages.
    shingle_words: int = field(5, "words per shingle (FineWeb)", range=(1, 20))
    jaccard: float = field(0.8, "near-duplicate above this estimated Jaccard similarity (Gopher)", range=(0.1, 1))
    num_perm: int = field(128, "MinHash permutations: more = finer estimates, slower", range=(16, 512))
    redact_pii: bool = field(True, "replace e-mail addresses and phone numbers with placeholders")
    seed: int = field(1, "MinHash permutation seed", shown=(0, 2**31 - 1))

    def rules(self) -> list[str]:
        return [h for h in HEURISTICS if h in self.heuristics.split(",")]


@dataclass
class CleaningResult:
    dataset: "datasets.Dataset"  # noqa: F821  survivors: the input columns (text cleaned) + stats
    funnel: list[dict]           # per stage: stage, documents, tokens (kept after it), seconds
    removed: list[dict]          # per dropped document: id, stage, reason, source, label, preview
    scores: list[dict]           # per filter: filter, positives, flagged, tp, fp, fn, precision, recall
    redacted: dict               # {"emails": n, "phones": n, "documents": n}
    seconds: float               # the whole run (the funnel's stage times leave out measuring)
    message: str = ""            # set when no document survived: what removed the last ones, what to do


def clean(ds, cfg: CleaningConfig = CleaningConfig(), progress=None) -> CleaningResult:
    """Run every enabled stage on a dataset with a `text` column (labelled `label` if scored;
    a `tokens` column, if present, is taken as each text's count_tokens, not counted again).
    progress, if given, is called as progress(fraction_done, stage_name)."""
    start = time.perf_counter()
    unknown = set(cfg.heuristics.split(",")) - set(HEURISTICS) - {""}
    if unknown:
        raise UserError(f"Unknown heuristic filter {', '.join(sorted(unknown))}: choose from {', '.join(HEURISTICS)}.")
    for col in ("id", "source", "label"):
        if col not in ds.column_names:
            ds = ds.add_column(col, list(range(len(ds))) if col == "id" else ["unknown"] * len(ds))
    stages = [("raw", _count_tokens)]
    stages += [("normalize", _normalize)] if cfg.normalize else []
    stages += [("measure", _measure)] + [(r, _rule_filter(r)) for r in cfg.rules()]
    stages += [("exact_dedup", _exact_dedup)] if cfg.exact_dedup else []
    stages += [("near_dedup", _near_dedup)] if cfg.near_dedup else []
    stages += [("pii", _redact)] if cfg.redact_pii else []
    run = _Run(cfg, ds)
    for k, (name, step) in enumerate(stages):
        if progress:
            progress(k / len(stages), name)
        t = time.perf_counter()
        if len(run.ds):
            run.ds = step(run, name)
        if name != "measure":
            run.funnel.append({"stage": name, "documents": len(run.ds),
                               "tokens": sum(run.ds["tokens"]) if len(run.ds) else 0,
                               "seconds": round(time.perf_counter() - t, 3)})
        if not len(run.ds) and not run.message:
            run.message = (f"No documents are left after '{name}'. Loosen that filter's threshold "
                           "(or switch it off) to keep some, or add more clean sources.")
    if progress:
        progress(1.0, "done")
    return CleaningResult(run.ds, run.funnel, run.removed, run.scores(), run.redacted,
                          round(time.perf_counter() - start, 3), run.message)


class _Run:
    """The state a pipeline run carries from stage to stage."""

    def __init__(self, cfg: CleaningConfig, ds):
        self.cfg, self.ds, self.input = cfg, ds, ds
        self.funnel: list[dict] = []
        self.removed: list[dict] = []
        self.judged: list[tuple[str, list[bool], list[str]]] = []  # (filter, flagged, labels it saw)
        self.redacted = {"emails": 0, "phones": 0, "documents": 0}
        self.message = ""

    def drop(self, name: str, keep: list[bool], reasons: list[str], judge: bool = True):
        """Keep rows where keep is True; log the others with their reason."""
        gone = [i for i, k in enumerate(keep) if not k]
        for i, row in zip(gone, self.ds.select(gone).select_columns(["id", "text", "source", "label"])):
            self.removed.append({"id": row["id"], "stage": name, "reason": reasons[i], "source": row["source"],
                                 "label": row["label"], "preview": row["text"][:200]})
        if judge:
            self.judged.append((name, [not k for k in keep], self.ds["label"]))
        return self.ds.filter(lambda idx: [keep[i] for i in idx], with_indices=True, input_columns=[],
                              batched=True, new_fingerprint=f"{name}-{id(keep)}").flatten_indices()

    def scores(self) -> list[dict]:
        if not set(self.input["label"]) & (set(LABELS) - {"clean"}):
            return []  # unlabelled data (an upload): nothing to score against
        kept = set(self.ds["id"]) if len(self.ds) else set()
        judged = [*self.judged, ("all_filters", [i not in kept for i in self.input["id"]], self.input["label"])]
        return [{"filter": f, **precision_recall(flagged, labels, POSITIVES[f])} for f, flagged, labels in judged]


def precision_recall(flagged, labels, positives) -> dict:
    """Precision and recall of `flagged` for labels in `positives` (None where undefined)."""
    tp = sum(f and lab in positives for f, lab in zip(flagged, labels))
    fp = sum(f and lab not in positives for f, lab in zip(flagged, labels))
    fn = sum(not f and lab in positives for f, lab in zip(flagged, labels))
    return {"positives": ", ".join(positives), "flagged": tp + fp, "tp": tp, "fp": fp, "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None}


# ---------------------------------------------------------------- stages

def _count_tokens(run: _Run, _name):
    if "tokens" in run.ds.column_names:  # counted by the caller already (the Data page's per-source table)
        return run.ds
    return run.ds.map(lambda b: {"tokens": count_tokens(b["text"])}, batched=True, batch_size=1000,
                      new_fingerprint=f"tokens-{id(run)}")


def _normalize(run: _Run, _name):
    def batch(b):
        text = [normalize(t) for t in b["text"]]
        changed = [i for i, (new, old) in enumerate(zip(text, b["text"])) if new != old]
        tokens = list(b["tokens"])  # recount only what changed: counting is the slow part
        for i, n in zip(changed, count_tokens([text[i] for i in changed])):
            tokens[i] = n
        return {"text": text, "tokens": tokens}

    return run.ds.map(batch, batched=True, batch_size=1000, new_fingerprint=f"normalize-{id(run)}")


def normalize(text: str) -> str:
    """NFC (so é is one code point however it was typed), unify line ends, turn odd spaces
    into plain ones, drop trailing spaces and runs of blank lines. Indentation is kept: code."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[\u00a0\u2000-\u200b\u202f\u3000\t]", lambda m: "    " if m[0] == "\t" else " ", text)
    text = re.sub(r"[ ]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip().lstrip("\n")


def stats(text: str) -> dict:
    """The signals the heuristic filters threshold."""
    words = text.split()
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    n = max(len(words), 1)
    return {
        "words": len(words),
        "mean_word_len": sum(map(len, words)) / n,
        "symbol_ratio": len(SYMBOL_RE.findall(text)) / n,
        "line_punct": sum(line.endswith(TERMINAL) for line in lines) / max(len(lines), 1),
        "stop_words": len(STOP_WORDS & {w.strip(".,;:!?\"'()").lower() for w in words}),
        "repeated_lines": 1 - len(set(lines)) / max(len(lines), 1),
    }


def failures(s: dict, c: CleaningConfig) -> dict[str, str]:
    """Which heuristics reject a document with stats s, and why in words."""
    fail = {}
    if not c.min_words <= s["words"] <= c.max_words:
        fail["word_count"] = f"{s['words']} words (keep {c.min_words}–{c.max_words})"
    if not c.min_mean_word_len <= s["mean_word_len"] <= c.max_mean_word_len:
        fail["word_length"] = (f"mean word length {s['mean_word_len']:.1f} "
                               f"(keep {c.min_mean_word_len:g}–{c.max_mean_word_len:g})")
    if s["symbol_ratio"] > c.max_symbol_ratio:
        fail["symbols"] = f"{s['symbol_ratio']:.2f} symbols per word (max {c.max_symbol_ratio:g})"
    if s["line_punct"] < c.min_line_punct:
        fail["line_punct"] = f"{s['line_punct']:.0%} of lines end in punctuation (min {c.min_line_punct:.0%})"
    if s["stop_words"] < c.min_stop_words:
        fail["stop_words"] = f"{s['stop_words']} stop words (min {c.min_stop_words})"
    if s["repeated_lines"] > c.max_repeated_lines:
        fail["repeated_lines"] = f"{s['repeated_lines']:.0%} repeated lines (max {c.max_repeated_lines:.0%})"
    return fail


def _measure(run: _Run, _name):
    """Each rule's verdict and reason, as columns that the rule filters then read."""
    cfg, rules = run.cfg, run.cfg.rules()

    def batch(b):
        out = {"fails": [], "reasons": []}
        for text, source in zip(b["text"], b["source"]):
            exempt = source == "stdlib-code" and not cfg.heuristics_on_code
            fail = {} if exempt else failures(stats(text), cfg)
            out["fails"].append([r for r in fail if r in rules])
            out["reasons"].append([why for r, why in fail.items() if r in rules])
        return out

    ds = run.ds.map(batch, batched=True, batch_size=1000, new_fingerprint=f"measure-{id(run)}")
    fails, labels = ds["fails"], ds["label"]
    if rules:  # each rule judged alone on everything, then all of them together
        run.judged += [(r, [r in f for f in fails], labels) for r in rules]
        run.judged.append(("any_heuristic", [bool(f) for f in fails], labels))
    return ds


def _rule_filter(rule: str):
    def step(run: _Run, name):
        fails, reasons = run.ds["fails"], run.ds["reasons"]
        keep = [rule not in f for f in fails]
        why = [r[f.index(rule)] if rule in f else "" for f, r in zip(fails, reasons)]
        return run.drop(name, keep, why, judge=False)  # judged alone in _measure
    return step


def _exact_dedup(run: _Run, name):
    """Keep the first document with each text hash (of the normalised text, when normalising)."""
    hashes = run.ds.map(lambda b: {"hash": [hashlib.sha1(t.encode()).hexdigest() for t in b["text"]]},
                        batched=True, batch_size=1000, new_fingerprint=f"hash-{id(run)}")["hash"]
    first: dict[str, int] = {}
    keep, why = [], []
    for i, h in zip(run.ds["id"], hashes):
        keep.append(first.setdefault(h, i) == i)
        why.append(f"same text as document {first[h]}")
    return run.drop(name, keep, why)


def _near_dedup(run: _Run, name):
    """Keep the first of each group whose estimated Jaccard similarity of word shingles
    exceeds the threshold. datasketch picks the LSH bands for that threshold."""
    from datasketch import MinHash, MinHashLSH

    cfg = run.cfg
    # zlib.crc32 instead of datasketch's default SHA-1 wrapper: signatures twice as fast, and
    # datasketch mixes the hash (MurmurHash3 finaliser) before permuting it anyway.
    proto = MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashfunc=zlib.crc32)

    def signatures(b):
        return {"minhash": [m.hashvalues.tolist() for m in MinHash.generator(
            (shingles(t, cfg.shingle_words) for t in b["text"]),
            num_perm=cfg.num_perm, seed=cfg.seed, hashfunc=zlib.crc32)]}

    sigs = run.ds.map(signatures, batched=True, batch_size=500, new_fingerprint=f"minhash-{id(run)}")["minhash"]
    lsh = MinHashLSH(threshold=cfg.jaccard, num_perm=cfg.num_perm)
    kept: dict[int, MinHash] = {}
    keep, why = [], []
    for i, sig in zip(run.ds["id"], sigs):
        m = MinHash(seed=cfg.seed, hashvalues=sig, permutations=proto.permutations, scheme=proto.scheme)
        # LSH returns candidates; confirm with the estimate so the threshold means what it says.
        best = max(((m.jaccard(kept[j]), j) for j in lsh.query(m)), default=(0.0, None))
        keep.append(best[0] < cfg.jaccard)
        why.append(f"near-copy of document {best[1]} (Jaccard ≈ {best[0]:.2f})")
        if keep[-1]:
            kept[i] = m
            lsh.insert(i, m)
    return run.drop(name, keep, why)


def shingles(text: str, k: int) -> list[bytes]:
    """Lower-cased word k-grams, punctuation ignored (as FineWeb normalises before hashing)."""
    words = re.findall(r"\w+", text.lower())
    return [" ".join(words[i:i + k]).encode() for i in range(max(len(words) - k + 1, 1))]


def _redact(run: _Run, name):
    def batch(b):
        out = {"text": [], "emails": [], "phones": [], "tokens": list(b["tokens"])}
        for i, text in enumerate(b["text"]):
            text, n_email = EMAIL_RE.subn("<EMAIL>", text)
            text, n_phone = PHONE_RE.subn("<PHONE>", text)
            out["text"].append(text)
            out["emails"].append(n_email)
            out["phones"].append(n_phone)
            if n_email + n_phone:
                out["tokens"][i] = count_tokens([text])[0]
        return out

    ds = run.ds.map(batch, batched=True, batch_size=1000, new_fingerprint=f"pii-{id(run)}")
    emails, phones = ds["emails"], ds["phones"]
    found = [e + p > 0 for e, p in zip(emails, phones)]
    run.judged.append((name, found, ds["label"]))
    run.redacted = {"emails": sum(emails), "phones": sum(phones), "documents": sum(found)}
    return ds


@dataclass
class TrainTexts:
    raw: str      # crawl documents as crawled, in crawl order, cut to the budget
    cleaned: str  # the cleaning survivors, in the same order, cut to the same budget
    heldout: str  # clean documents that neither text contains, nor any copy of them
    heldout_ids: list[int]  # the crawl ids of those documents
    budget: int   # the size both were cut to
    unit: str     # "characters", or "tokens" of the tokenizer given
    note: str = ""


def train_texts(crawl, result: CleaningResult, budget: int | None = None, tok=None,
                heldout_docs: int = 100, seed: int = 0) -> TrainTexts:
    """Raw and cleaned training text of equal size, for "what cleaning buys", and a clean
    validation text. Held-out documents and their copies are taken out of both, so neither
    model is scored on text it saw. budget is in characters, or in tokens when tok is given;
    it defaults to (and cannot exceed) the size of the cleaned text."""
    rng = random.Random(seed)
    clean_ids = [i for i, lab in zip(crawl["id"], crawl["label"]) if lab == "clean"]
    held = set(rng.sample(clean_ids, min(heldout_docs, len(clean_ids) // 5)))
    parent = dict(zip(crawl["id"], crawl["parent"]))
    raw = "\n\n".join(t for i, t in zip(crawl["id"], crawl["text"]) if i not in held and parent[i] not in held)
    kept = result.dataset if len(result.dataset) else {"id": [], "text": []}
    cleaned = "\n\n".join(t for i, t in zip(kept["id"], kept["text"]) if i not in held and parent[i] not in held)
    heldout = "\n\n".join(t for i, t in zip(crawl["id"], crawl["text"]) if i in held)
    cleaned, have = _cut(cleaned, budget, tok)  # the smaller text, so cut it first
    raw, n = _cut(raw, have, tok)
    if n < have:  # rare: redaction placeholders can make a cleaned text longer than its raw one
        cleaned, have = _cut(cleaned, n, tok)
    note = f"Asked for {budget:,} but the cleaned text has only {have:,}: both use {have:,}." \
        if budget is not None and budget > have else ""
    return TrainTexts(raw, cleaned, heldout, sorted(held), have, "tokens" if tok else "characters", note)


def _cut(text: str, budget: int | None, tok) -> tuple[str, int]:
    """The longest prefix within budget (None: all), and its size: characters, or tokens as
    engine.tokenizer.encode counts them (line by line). Encodes a block at a time, to stop early."""
    if tok is None:
        return text[:budget], len(text[:budget])
    lines, used = text.splitlines(keepends=True), 0
    for start in range(0, len(lines), 512):
        for k, enc in enumerate(tok.backend_tokenizer.encode_batch(lines[start:start + 512],
                                                                   add_special_tokens=False), start):
            if budget is not None and used + len(enc.ids) > budget:
                return "".join(lines[:k]) + lines[k][:enc.offsets[budget - used][0]], budget
            used += len(enc.ids)
    return text, used
