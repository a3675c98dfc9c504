"""The Data page's one config: every part's settings flattened into one link."""
from __future__ import annotations

import dataclasses
import typing

from engine.core.config import StageConfig, field
from engine.data.cleaning import CleaningConfig
from engine.data.compare import CompareConfig
from engine.data.crawl import CrawlConfig
from engine.data.quality import QualityConfig


@dataclasses.dataclass
class LabConfig(StageConfig):
    vocab_size: int = field(1024, "BPE vocabulary size in the tokenizer lab", range=(260, 8192))
    hub_name: str = field("", "Hugging Face dataset used as the upload source", private=True)


# ---------------------------------------------------------------- the page's one config

# ui.read_config writes one config to the URL, and the page's engine configs share field names
# (seed in three of them), so they are flattened into one: a part's fields keep their names,
# with the part's prefix, or the part's name where a name is already taken.
PARTS = {"crawl": (CrawlConfig, ""), "cleaning": (CleaningConfig, ""), "quality": (QualityConfig, "quality_"),
         "compare": (CompareConfig, "compare_"), "lab": (LabConfig, "")}


# The raw-vs-cleaned training is the page's one slow part; the defaults ARE the quick demo (the
# recorded demo "data-cleaning-gap" and the "What cleaning buys" experiment use them).
PRESETS = {"PRESETS": {"quick demo": dict(compare_size="50k", compare_steps=400, compare_max_seconds=120),
                       "standard": dict(compare_size="200k", compare_steps=800, compare_max_seconds=150),
                       "thorough": dict(compare_size="200k", compare_steps=1500, compare_max_seconds=150)},
           "PRESET_NOTES": {"quick demo": "two 50k models, 400 steps each: about 20 s",
                            "standard": "two 200k models, 800 steps each: about a minute",
                            "thorough": "two 200k models, 1,500 steps each: a clearer gap, about two minutes"}}


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
