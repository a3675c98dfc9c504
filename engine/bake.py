"""Rebuild the default runs shipped in assets/runs (`python -m engine bake [name ...]`).

Deterministic under the seed (no time limits), so the same commit bakes the same models. The
baked runs are what later stages start from when a visitor has trained nothing yet:
pretrain-base-gpt -> sft-base -> RLHF / constitutional AI.
"""
from __future__ import annotations

import shutil

from . import cai, pretrain, sft
from .runs import ASSET_RUNS

BASE_GPT = pretrain.PretrainConfig(corpus="world", tokenizer="char", objective="clm", size="200k", block_size=64,
                                   steps=2500, lr=2e-3, warmup=100, max_seconds=3600, eval_every=250,
                                   sample_every=1000, seed=0)
# The SFT page's defaults, run to the end whatever the machine's speed.
BASE_SFT = sft.SFTConfig(max_seconds=3600)
# Constitutional AI's starting point: the same recipe on the SFT families plus compliance with
# red-team prompts, longer because a third of each batch is red-team rows.
HELPFUL_ONLY = sft.SFTConfig(steps=2400, max_seconds=3600)
BAKED = {"pretrain-base-gpt": (pretrain.run, BASE_GPT), "sft-base": (sft.run, BASE_SFT),
         "sft-helpful-only": (cai.bake_helpful_only, HELPFUL_ONLY)}   # in lineage order


def bake(names: list[str] | None = None) -> None:
    from .__main__ import ConsoleReporter

    for name, (run, cfg) in BAKED.items():
        if names and name not in names:
            continue
        tmp = run(cfg, ConsoleReporter())
        dest = ASSET_RUNS / name
        shutil.rmtree(dest, ignore_errors=True)
        shutil.move(tmp, dest)
        print(f"baked {dest}")
