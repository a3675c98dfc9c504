"""Pretraining speed, loss and latency. `python bench/bench_pretrain.py [--threads 2] [--steps 2000]`

1. The engine's bookkeeping: engine.loop.train against a bare PyTorch loop, same model, same
   batches, same optimizer and autocast, in this process: tokens/s ratio (target >= 0.9).
2. nanoGPT's CPU benchmark shape on tinyshakespeare (4 layers, 4 heads, width 128, context 64,
   batch 12, lr 1e-3, 100 warmup steps, cosine to 1e-4, 2,000 steps): the engine (transformers
   GPT-2, eager attention, bf16 autocast) against the fp32 nanoGPT-architecture reference in
   bench/reference_gpt.py: ms/step, tokens/s ratio (target >= 1.3) and validation loss (<= 1.89).
3. The Pretraining page's default preset through the job runner: seconds to the first loss
   point, to the end, and the final validation loss against ln(V).
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_gpt import GPT  # noqa: E402

from engine import pretraining as pretrain
from engine.core import loop  # noqa: E402
from engine.core.jobs import JobRunner  # noqa: E402
from engine.core.models import build_model  # noqa: E402
from engine.core.report import Recorder, Task  # noqa: E402
from engine.core.tokenizer import char_tokenizer, encode  # noqa: E402
from engine.pretraining import PretrainConfig  # noqa: E402

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
NANO = dict(n_layer=4, n_head=4, n_embd=128, block=64, batch=12, lr=1e-3, warmup=100)


def data():
    text = SHAKESPEARE.read_text()
    tok = char_tokenizer(text)
    ids = torch.tensor(encode(tok, text))
    n = int(0.9 * len(ids))
    return tok, ids[:n], ids[n:]


def batches(ids, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    T, B = NANO["block"], NANO["batch"]
    out = []
    for _ in range(n):
        s = torch.randint(len(ids) - T - 1, (B,), generator=g)
        x = torch.stack([ids[i:i + T + 1] for i in s.tolist()])
        out.append(x)
    return out


def settings(steps):
    return loop.LoopSettings(steps=steps, lr=NANO["lr"], warmup_steps=NANO["warmup"], eval_every=10**9,
                             max_seconds=10**6, bf16=True)


def engine_model(tok):
    return build_model("clm", len(tok), NANO["n_layer"], NANO["n_head"], NANO["n_embd"], NANO["block"], 0,
                       tok.pad_token_id, tok.eos_token_id)


def bare_loop(model, bs, s: loop.LoopSettings, forward):
    """The minimal loop: what any PyTorch script does, nothing else."""
    params = list(model.parameters())
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": s.weight_decay},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                            lr=s.lr, betas=s.betas)
    from transformers import get_scheduler
    sched = get_scheduler("cosine_with_min_lr", opt, num_warmup_steps=s.warmup_steps, num_training_steps=s.steps,
                          scheduler_specific_kwargs={"min_lr_rate": s.min_lr_ratio})
    for x in bs[: s.steps]:
        with torch.autocast("cpu", torch.bfloat16, enabled=s.bf16):
            loss = forward(model, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, s.grad_clip)
        opt.step()
        sched.step()


@torch.no_grad()
def eval_loss(model, val, forward, n=100):
    model.eval()
    losses = [forward(model, x).item() for x in batches(val, n, seed=1)]
    model.train()
    return sum(losses) / len(losses)


def hf_forward(model, x):
    """Every position predicts its next token, as nanoGPT's loss does."""
    logits = model(input_ids=x[:, :-1]).logits
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten())


def ref_forward(model, x):
    return model(x[:, :-1], x[:, 1:])


def overhead(tok, train, steps=300):
    """Wall time per step over whole runs, both loops on the same batches; interleaved and
    repeated so drift on a shared machine hits both alike; the best of each is kept."""
    bs = batches(train, steps)
    s = settings(steps)
    res = {"bare": [], "engine": []}
    for _ in range(2):
        for name in res:
            model = engine_model(tok)
            t = time.perf_counter()
            if name == "bare":
                bare_loop(model, bs, s, hf_forward)
            else:
                it = iter(bs)
                loop.train(model, lambda m, b: hf_forward(m, b["x"]), lambda step: {"x": next(it)}, s, Recorder())
            res[name].append((time.perf_counter() - t) / steps)
    return min(res["bare"]), min(res["engine"])


def nanogpt_shape(tok, train, val, steps):
    bs = batches(train, steps)
    s = settings(steps)
    out = {}
    model = engine_model(tok)
    rep = Recorder()
    it = iter(bs)
    t = time.perf_counter()
    loop.train(model, lambda m, b: hf_forward(m, b["x"]), lambda step: {"x": next(it)}, s, rep)
    out["engine"] = ((time.perf_counter() - t) / steps, eval_loss(model, val, hf_forward))
    torch.manual_seed(0)
    ref = GPT(len(tok), NANO["block"], NANO["n_layer"], NANO["n_head"], NANO["n_embd"])
    t = time.perf_counter()
    bare_loop(ref, bs, settings(steps).__class__(**{**settings(steps).__dict__, "bf16": False}), ref_forward)
    out["reference fp32"] = ((time.perf_counter() - t) / steps, eval_loss(ref, val, ref_forward))
    return out


def default_preset():
    runner = JobRunner(measure_energy=False)
    cfg = PretrainConfig()
    pretrain.prepare(cfg, pretrain.load_text(cfg))  # the page tokenizes in the click's callback
    t0 = time.perf_counter()
    job = runner.submit("bench", Task(pretrain.run, cfg), owner="bench",
                        total_steps=cfg.steps, max_seconds=cfg.max_seconds)
    first = None
    while job.active:
        if first is None and any("loss" in r for r in job.records):
            first = time.perf_counter() - t0
        time.sleep(0.01)
    total = time.perf_counter() - t0
    val = [r["eval_loss"] for r in job.records if "eval_loss" in r]
    return first, total, val[-1], job.info["uniform_loss"], job.samples[-1]["text"], job.status, job.message


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2000)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} threads\n")
    tok, train, val = data()
    bare, eng = overhead(tok, train)
    print(f"1. bookkeeping: bare loop {bare * 1000:.1f} ms/step, engine loop {eng * 1000:.1f} ms/step; "
          f"tokens/s ratio engine/bare = {bare / eng:.3f} (target >= 0.9)")
    out = nanogpt_shape(tok, train, val, a.steps)
    (e_ms, e_val), (r_ms, r_val) = out["engine"], out["reference fp32"]
    print(f"2. nanoGPT shape, {a.steps} steps on tinyshakespeare:")
    print(f"   engine (GPT2LMHeadModel, eager, bf16): {e_ms * 1000:.1f} ms/step, val loss {e_val:.3f}")
    print(f"   reference (nanoGPT architecture, SDPA, fp32): {r_ms * 1000:.1f} ms/step, val loss {r_val:.3f}")
    print(f"   tokens/s ratio engine/reference = {r_ms / e_ms:.2f} (target >= 1.3); val loss target <= 1.89")
    torch.set_num_threads(1)  # the job runner's setting
    first, total, v, uni, sample, status, msg = default_preset()
    print(f"3. default preset via the job runner (1 thread): first loss point after {first:.2f} s, "
          f"finished in {total:.1f} s ({status} {msg}), val loss {v:.3f} vs ln(V) = {uni:.2f}")
    print(f"   last sample: {sample[:100]!r}")


if __name__ == "__main__":
    main()
