"""Rebuild the default runs shipped in assets/runs (`python -m engine bake`).

Deterministic under the seed, so the same commit bakes the same model. The base run is
what later stages fine-tune when a visitor has trained nothing yet.
"""
from __future__ import annotations

import shutil

from .pretrain import PretrainConfig, run
from .runs import ASSET_RUNS

BASE_GPT = PretrainConfig(corpus="world", tokenizer="char", objective="clm", size="200k", block_size=64,
                          steps=2500, lr=2e-3, warmup=100, max_seconds=3600, eval_every=250,
                          sample_every=1000, seed=0)
BAKED = {"base-gpt": BASE_GPT}


def bake() -> None:
    from .__main__ import ConsoleReporter

    for name, cfg in BAKED.items():
        rep = ConsoleReporter()
        tmp = run(cfg, rep)
        dest = ASSET_RUNS / f"pretrain-{name}"
        shutil.rmtree(dest, ignore_errors=True)
        shutil.move(tmp, dest)
        print(f"baked {dest}")
