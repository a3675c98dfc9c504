"""Tokenizers, built with the `tokenizers` library and wrapped as transformers tokenizers,
so `save_pretrained` / `AutoTokenizer.from_pretrained` work on everything trained here."""
from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

SPECIALS = {"pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>", "eos_token": "<eos>"}


ASCII = set(string.printable) - set("\r\x0b\x0c")


def char_tokenizer(text: str) -> PreTrainedTokenizerFast:
    """One token per character: printable ASCII always (so later stages can use '?', digits or
    capitals the corpus lacks), plus every other character seen in the text. A BPE model with no merges."""
    chars = sorted((set(text) | ASCII) - set(SPECIALS.values()))
    vocab = {t: i for i, t in enumerate([*SPECIALS.values(), *chars])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=SPECIALS["unk_token"]))
    tok.decoder = decoders.Fuse()
    return _wrap(tok)


def bpe_tokenizer(text: str, vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE as GPT-2 does it: no unknown characters, merges learned from the text."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(_chunks(text), trainer=trainer)
    return _wrap(tok)


def train_tokenizer(text: str, kind: str, vocab_size: int = 512) -> PreTrainedTokenizerFast:
    return char_tokenizer(text) if kind == "char" else bpe_tokenizer(text, vocab_size)


def encode(tok: PreTrainedTokenizerFast, text: str) -> list[int]:
    """Token ids for a long text, encoded line by line in one fast batch."""
    lines = text.splitlines(keepends=True)
    ids: list[int] = []
    for enc in tok.backend_tokenizer.encode_batch(lines, add_special_tokens=False):
        ids.extend(enc.ids)
    return ids


def _wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)


def _chunks(text: str, size: int = 1 << 16):
    for i in range(0, len(text), size):
        yield text[i:i + size]
