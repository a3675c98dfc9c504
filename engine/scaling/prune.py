"""Pruning: zero the smallest weights of a trained model and measure what it costs in loss.
Magnitude pruning with torch.nn.utils.prune, globally or layer by layer."""
from __future__ import annotations

import copy
import math

import torch
from torch.nn.utils import prune

from engine.core import runs
from engine.core.config import UserError
from engine.core.report import Reporter, StageResult
from engine.scaling.config import PruneConfig
from engine.scaling.training import load_corpus, mean_loss

SPARSITIES = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def load_base(name: str):
    """A finished causal-LM run and its corpus, re-tokenised the way it was trained."""
    found = [r for r in runs.list_runs(stage="pretrain") if r.path.name == name]
    if not found:
        raise UserError(f"No pretraining run named {name!r} here: pick one from the list.")
    info = found[0]
    if info.objective != "clm":
        raise UserError(f"{name} is a masked-token (BERT) model: pick a next-token (GPT) run.")
    if info.config.get("corpus") not in ("world", "python-docs"):
        raise UserError(f"{name} was trained on an uploaded or hub text that is not kept here: "
                        "pick a run trained on a built-in corpus.")
    model, tok, info = runs.load_run(info.path)
    corpus = load_corpus(info.config["corpus"], info.config.get("block_size", 64))
    if corpus.tokenizer.get_vocab() != tok.get_vocab():
        raise UserError(f"{name} used a tokenizer this page cannot rebuild (char-level runs only).")
    return model, corpus, info


def prunable(model) -> list[tuple[torch.nn.Module, str]]:
    """Every weight matrix inside the transformer blocks: attention and MLP. Embeddings (and the
    output layer tied to them) stay dense, as in most pruning studies of language models."""
    emb = model.get_input_embeddings().weight
    return [(m, "weight") for m in model.modules()
            if not isinstance(m, torch.nn.Embedding) and isinstance(getattr(m, "weight", None), torch.nn.Parameter)
            and m.weight.dim() == 2 and m.weight is not emb]


def pruned(model, sparsity: float, method: str):
    """A copy with the smallest-magnitude weights zeroed: "global" ranks all prunable weights
    together (torch.nn.utils.prune.global_unstructured); "per-layer" prunes each matrix alike."""
    m = copy.deepcopy(model)
    params = prunable(m)
    if sparsity > 0:
        if method == "global":
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=sparsity)
        else:
            for mod, name in params:
                prune.l1_unstructured(mod, name, amount=sparsity)
        for mod, name in params:
            prune.remove(mod, name)  # bake the mask into the weight
    return m


def sparsity_of(model) -> float:
    ws = [m.weight for m, _ in prunable(model)]
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)


@torch.no_grad()
def run_prune(cfg: PruneConfig, reporter: Reporter) -> StageResult:
    """The loss of a trained model pruned to each sparsity, globally and layer by layer."""
    model, corpus, info = load_base(cfg.prune_run)
    kept = sum(w.numel() for w in (m.weight for m, _ in prunable(model)))
    reporter.set_info(base=info.name, params=model.num_parameters(), prunable=kept,
                      uniform_loss=math.log(len(corpus.tokenizer)))
    k, points = 0, []
    for method in ("global", "per-layer"):
        for s in SPARSITIES:
            if reporter.should_stop():
                return StageResult(None, {"points": points}, "stopped")
            reporter.wait_if_paused()
            m = pruned(model, s, method)
            k += 1
            # "loss" and "step" are what the job's progress bar reads
            point = {"step": k, "loss": mean_loss(m, corpus.quick), "method": method, "sparsity": s,
                     "measured_sparsity": sparsity_of(m)}
            reporter.emit(point)
            points.append(point)
    return StageResult(None, {"base": info.name, "points": points})


