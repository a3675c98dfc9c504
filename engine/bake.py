"""Rebuild the default runs shipped in assets/runs (`python -m engine bake [name ...]`).

Deterministic under the seed (no time limits), so the same commit bakes the same models. The
baked runs are what later stages start from when a visitor has trained nothing yet:
pretrain-base-gpt -> sft-base -> RLHF / constitutional AI.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from engine import pretraining, sft
from engine.cai.constitution import helpful_only_examples
from engine.core import runs
from engine.core.report import Reporter, StageResult
from engine.core.runs import ASSET_RUNS

BASE_GPT = pretraining.PretrainConfig(corpus="world", tokenizer="char", objective="clm", arch="gpt2", size="200k",
                                      block_size=64, batch_size=16, steps=2500, lr=2e-3, warmup=100, max_seconds=3600,
                                      eval_every=250, sample_every=1000, seed=0, bf16=True)
# Every setting spelled out, so a page's changed defaults never change what is baked; run to the
# end whatever the machine's speed.
BASE_SFT = sft.SFTConfig(families="facts,copy,reverse,uppercase,label,pattern", n_train=1000, mask_prompt=True,
                         replay=0.25, steps=1600, lr=3e-3, batch_size=32, warmup=30, max_seconds=3600,
                         eval_every=100, seed=0, bf16=True)
# Constitutional AI's starting point: the same recipe on the SFT families plus compliance with
# red-team prompts, longer because a third of each batch is red-team rows.
HELPFUL_ONLY = BASE_SFT.replace(steps=2400)


def bake_helpful_only(cfg: sft.SFTConfig, reporter: Reporter) -> StageResult:
    """Tune the baked base on the helpful-only data."""
    out = sft.run(cfg, reporter, helpful_only_examples(cfg.seed, cfg.n_train))
    path = Path(out.run)
    # The newest baked SFT run is every page's default policy: keep that sft-base, not this one.
    info = json.loads((path / "run.json").read_text())
    base = ASSET_RUNS / "sft-base" / "run.json"
    if base.exists():
        info["created"] = json.loads(base.read_text())["created"] - 1
        (path / "run.json").write_text(json.dumps(info, indent=1))
    # Every evaluation, and every fifth training step: the curve, in a fifth of the repository's bytes.
    metrics = runs.read_metrics(path)
    with open(path / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in metrics if "loss" not in r or r["step"] % 5 == 0)
    return out


BAKED = {"pretrain-base-gpt": (pretraining.run, BASE_GPT), "sft-base": (sft.run, BASE_SFT),
         "sft-helpful-only": (bake_helpful_only, HELPFUL_ONLY)}   # in lineage order


def bake(names: list[str], reporter_for) -> None:
    """Bake `names` (all when empty), each reporting to reporter_for(name)."""
    for name, (run, cfg) in BAKED.items():
        if names and name not in names:
            continue
        tmp = run(cfg, reporter_for(name)).run
        dest = ASSET_RUNS / name
        shutil.rmtree(dest, ignore_errors=True)
        shutil.move(tmp, dest)
        print(f"baked {dest}")
