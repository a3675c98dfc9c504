"""The tokenizer lab: byte-level BPE trained on the crawl's own mixture, how many tokens a word
costs per source, and the trade-off a vocabulary size sets (sequence length against embedding size)."""
from __future__ import annotations

import json

from tokenizers import Tokenizer

from engine.core.tokenizer import SPECIALS, encode
from engine.data.crawl import count_tokens

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
