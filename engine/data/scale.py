"""The datasets real models were trained on, in tokens, each with its source, and the misstatements
about them that circulate, checked."""
from __future__ import annotations

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
