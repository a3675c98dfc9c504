"""Distillation (Hinton, Vinyals & Dean 2015, arXiv:1503.02531): a small student learns from a larger
teacher's softened next-token distribution, beside the same student trained on the text alone."""
from __future__ import annotations

import hashlib
import json
import time

import torch
import torch.nn.functional as F

from engine.core import limits, runs
from engine.core.config import UserError
from engine.core.models import build_model
from engine.core.report import Reporter, Segment, StageResult
from engine.pretraining import PretrainConfig
from engine.scaling.config import DistillConfig
from engine.scaling.laws import param_counts
from engine.scaling.plans import HEAD_DIM
from engine.scaling.prune import load_base
from engine.scaling.training import load_corpus, mean_loss, train_lm

DISTILL_BATCH = 16


def distill_loss(teacher, temperature: float, alpha: float):
    """Hinton et al. 2015: match the teacher's softened distribution, KL(p_T || p_S) at
    temperature T, scaled by T² so its gradients keep their size as T changes, mixed with the
    usual cross-entropy on the true next token."""
    def loss_fn(model, batch):
        x = batch["input_ids"]
        out = model(input_ids=x, labels=x)
        with torch.no_grad():
            t_logits = teacher(input_ids=x).logits[:, :-1].float()
        s_logits = out.logits[:, :-1].float()
        kl = F.kl_div(F.log_softmax(s_logits / temperature, -1).flatten(0, 1),
                      F.log_softmax(t_logits / temperature, -1).flatten(0, 1), log_target=True,
                      reduction="batchmean")
        loss = alpha * temperature ** 2 * kl + (1 - alpha) * out.loss
        return loss, {"distill/kl": kl.item(), "distill/ce": out.loss.item()}
    return loss_fn


TEACHER = {"corpus": "python-docs", "n_layer": 4, "n_embd": 64, "block": 64, "lr": 3e-3}  # ~200k parameters


def teacher_name(cfg: DistillConfig) -> str:
    blob = json.dumps([TEACHER, cfg.teacher_steps, cfg.seed], sort_keys=True)
    return f"teacher-{hashlib.sha1(blob.encode()).hexdigest()[:8]}"


def saved_teacher(cfg: DistillConfig, owner: str | None) -> str | None:
    """The folder name of the teacher an earlier job trained with these settings, if any."""
    if cfg.teacher:
        return cfg.teacher
    found = [r for r in runs.list_runs(stage="pretrain", owner=owner) if r.name == teacher_name(cfg) and not r.baked]
    return found[0].path.name if found else None


def _teacher(cfg: DistillConfig, reporter: Reporter, owner: str | None):
    """The picked run, the one trained earlier with these settings, or a new one trained now on
    Python's docs and saved: a teacher whose probabilities carry real uncertainty to pass on.
    Returns (model, corpus, run info, steps it took in this job), or None when it did not finish."""
    if name := saved_teacher(cfg, owner):
        return (*load_base(name), 0)
    t = TEACHER
    corpus = load_corpus(t["corpus"], t["block"])
    tok = corpus.tokenizer
    model = build_model("clm", len(tok), t["n_layer"], t["n_embd"] // HEAD_DIM, t["n_embd"], t["block"], cfg.seed,
                        tok.pad_token_id, tok.eos_token_id)
    part = Segment(reporter, tags={"role": "teacher"})
    res = train_lm(model, corpus.train, {"eval_loss": corpus.quick}, cfg.teacher_steps, t["lr"], t["block"],
                   DISTILL_BATCH, cfg.seed, part, limits.MAX_JOB_SECONDS)
    if res.status != "done":
        return None
    model = model.float().eval()
    pcfg = PretrainConfig(corpus=t["corpus"], tokenizer="char", size="custom", n_layer=t["n_layer"],
                          n_head=t["n_embd"] // HEAD_DIM, n_embd=t["n_embd"], block_size=t["block"],
                          batch_size=DISTILL_BATCH, lr=t["lr"], steps=cfg.teacher_steps, seed=cfg.seed)
    summary = {"params": model.num_parameters(), "vocab_size": len(tok), "objective": "clm",
               "eval_loss": res.final_eval.get("eval_loss"), "from": "distillation teacher"}
    path = runs.save_run(model, tok, "pretrain", pcfg.to_dict(), res.records, summary, name=teacher_name(cfg),
                         owner=owner)
    return model, corpus, runs.read_info(path), res.steps


def run_distill(cfg: DistillConfig, reporter: Reporter, owner: str | None = None) -> StageResult:
    """The same student trained twice from the same initialisation on the same batches: once on
    the true next token alone, once also matching the teacher. Both validated on true text."""
    if cfg.st_width % HEAD_DIM:
        raise UserError(f"Student width {cfg.st_width} is not a multiple of {HEAD_DIM}: pick one that is.")
    t0 = time.perf_counter()
    got = _teacher(cfg, reporter, owner)
    if got is None:
        return StageResult(status="stopped" if reporter.should_stop() else "time limit")
    teacher, corpus, info, step0 = got
    teacher.requires_grad_(False)
    T, arch, tok = info.config.get("block_size", 64), info.config.get("arch", "gpt2"), corpus.tokenizer
    counts = param_counts(arch, cfg.st_layers, cfg.st_width, len(tok), T)
    facts = {"teacher": info.name, "teacher_params": teacher.num_parameters(), "student_params": counts["total"],
             "teacher_eval_loss": mean_loss(teacher, corpus.quick)}
    reporter.set_info(**facts)
    students, status, message = [], "done", ""
    for role, loss_fn in (("from scratch", None), ("distilled", distill_loss(teacher, cfg.temperature, cfg.alpha))):
        left = limits.MAX_JOB_SECONDS - (time.perf_counter() - t0)
        if reporter.should_stop() or left < 1:
            status = "stopped" if reporter.should_stop() else "time limit"
            break
        student = build_model("clm", len(tok), cfg.st_layers, cfg.st_width // HEAD_DIM, cfg.st_width, T, cfg.seed,
                              tok.pad_token_id, tok.eos_token_id, arch=arch)
        part = Segment(reporter, tags={"role": role}, step0=step0, seconds0=time.perf_counter() - t0)
        res = train_lm(student, corpus.train, {"eval_loss": corpus.quick}, cfg.st_steps, cfg.st_lr, T, DISTILL_BATCH,
                       cfg.seed, part, left, loss_fn=loss_fn, eval_every=max(1, cfg.st_steps // 20))
        step0 += cfg.st_steps
        if res.status != "done":
            status, message = res.status, res.message
            break
        students.append({"role": role, "eval_loss": res.final_eval.get("eval_loss"), "seconds": round(res.seconds, 1)})
        reporter.set_info(students=list(students))
    return StageResult(None, {**facts, "students": students}, status, message)
