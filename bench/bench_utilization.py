"""How much of this CPU's matmul throughput does a pretraining step use, where does the rest go,
and which changes win it back? One process, one run, everything interleaved (issue 17; the findings and a
recommended patch were written up as notes/speed-findings.md in the workspace, outside this repo).

    .venv/bin/python bench/bench_utilization.py                  # all sections, 2 threads: ~5 min on idle cores
    .venv/bin/python bench/bench_utilization.py --quick          # fewer passes, a shorter parity run: ~2 min
    .venv/bin/python bench/bench_utilization.py --only peak,util --wait-quiet 60     # on a shared machine
    .venv/bin/python bench/bench_utilization.py --only ab,profile --threads 1 --clock cpu   # robust under load
    .venv/bin/python bench/bench_utilization.py --only ab --candidates adamw-fused,gelu-erf --leave-one-out
    .venv/bin/python bench/bench_utilization.py --only parity --parity-steps 2000 --parity-seeds 0,1,2 \
        --val-batches 64 --candidates best                       # the recipe's loss, baseline vs recommended

Sections (--only picks some; default all):
  peak     bf16 and fp32 matmul throughput on the threads in use: a large square matmul (--square), and every
           matmul of one training step at its own shape (forward and backward), run back to back: the "matmul
           floor", the time a step would take if it were nothing but its matmuls.
  util     achieved FLOP/s of a training step (forward + backward + clip + AdamW + schedule, bf16 autocast, the
           same batches for both) at nanoGPT's CPU shape and at the Pretraining page's two presets ("200k" quick
           demo, "1M" thorough), as the engine did before issue 17 ("before", the baseline) and does now
           ("engine now", the recommended changes), and their ratio to the measured peaks. Interleaved passes of --steps-step blocks.
  profile  torch.profiler over --profile-steps steps of each of --profile-variants; every op's self time put
           into a category (matmul, dtype casts, layer norm, GELU, softmax/mask, loss, AdamW, clip, autograd
           engine, Python in the transformers modules, Python in the loop...). Proportions, with ms per step.
  ab       each candidate (--candidates, names in CANDIDATES) against the baseline: two models from the same
           init on the same batches, in --pairs alternating pairs of --block-step blocks (A B, B A, ...).
           --leave-one-out adds "best without X" against "best", for each part X of the recommended set.
  parity   train loss (mean of the last 20 steps) and validation loss after --parity-steps steps, per seed.
  floor    the step at a toy shape (same layer count, width 8, 8 tokens, batch 1) next to the real one, split
           into forward+loss, backward and clip+AdamW: what is left when there is no arithmetic (dispatch).

FLOPs per step = B*T * (6*N + 12*L*T*d), nanoGPT's estimate_mfu (PaLM, appendix B): N = the weights that take
part in matmuls (12*L*d^2 in the blocks + V*d for the tied LM head; biases, norms and the position table left
out), and 12*L*T*d per token for attention's QK^T and AV, forward and backward, over the full T x T (nothing
saved for the causal half). This is exactly the FLOPs of the matmuls the peak section replays.

On a shared machine: 2 threads under contention run up to 100x slower (OpenMP waits for a descheduled thread
at every op), so print the load with every figure (done here), compare only within one run, and prefer
(a) --wait-quiet S, which holds each block until the rest of the machine uses < 0.2 cores, or (b) --threads 1
--clock cpu, which times this thread's CPU time and is nearly immune to neighbours. A/B figures are the 10th
percentile of step times (noise only adds time) and the spread of the block pairs' ratios.
Nothing here edits the engine: the candidates are prototyped in this file (the custom attention is registered
with transformers under its own name; the GELU is swapped on the built model).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The only engine internals used: the model builder and the loop's settings (one-line fixes if they move).
try:
    from engine.core.models import SIZES, build_model
except ImportError:  # the layout before engine/core/
    from engine.models import SIZES, build_model
try:
    from engine.core.loop import LoopSettings
except ImportError:
    from engine.loop import LoopSettings

from transformers import get_scheduler

TEXT = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"

# name -> (layers, heads, width, context, batch). nanoGPT's README CPU recipe; the Pretraining page's presets.
SHAPES = {"nanogpt": (4, 4, 128, 64, 12),
          "200k": (*SIZES["200k"], 64, 16),   # "quick demo" preset
          "1M": (*SIZES["1M"], 64, 16)}       # "thorough" preset


def load() -> str:
    with open("/proc/loadavg") as f:
        return "load " + " ".join(f.read().split()[:3])


def flops_per_step(L, d, T, B, V) -> float:
    n_mm = 12 * L * d * d + V * d
    return B * T * (6 * n_mm + 12 * L * T * d)


CLOCK = time.perf_counter   # --clock cpu: time.thread_time, this thread's CPU time (only with --threads 1)


def others_busy(interval=0.25) -> float:
    """Cores' worth of CPU the rest of the machine used over `interval` s while this process slept."""
    def snap():
        with open("/proc/stat") as f:
            v = list(map(int, f.readline().split()[1:]))
        return sum(v), v[3] + v[4]
    (t0, i0), c0 = snap(), time.process_time()
    time.sleep(interval)
    (t1, i1), c1 = snap(), time.process_time()
    busy = (t1 - t0 - (i1 - i0)) / max(1, t1 - t0) * os.cpu_count()
    return max(0.0, busy - (c1 - c0) / interval)


def wait_quiet(args) -> float:
    """Wait (up to --wait-quiet s) until the others use under 0.2 cores; return what they used last."""
    t0, b = time.perf_counter(), others_busy()
    while b > 0.2 and time.perf_counter() - t0 < args.wait_quiet:
        b = others_busy(1.0)
    return b


def med_spread(xs):
    return statistics.median(xs), min(xs), max(xs)


# ----------------------------------------------------------------------------------------------- peak
def _time(fn, reps, warm=3, min_s=0.15):
    for _ in range(warm):
        fn()
    best = math.inf
    for _ in range(reps):  # the best of several repeats: what the hardware can do, not what the neighbours allow
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt > min_s:
                break
        best = min(best, dt / n)
    return best


def step_matmuls(L, d, T, B, V, H):
    """(batch, M, K, N, transposes) for every matmul of one training step, forward and backward."""
    M = B * T
    out = []
    for K, N in [(d, 3 * d), (d, d), (d, 4 * d), (4 * d, d)] * L + [(d, V)]:
        out += [(1, M, K, N, "nn"), (1, M, N, K, "nt"), (1, K, M, N, "tn")]   # fwd, grad input, grad weight
    hd = d // H
    for _ in range(L):  # QK^T and AV, each with two backward matmuls
        out += [(B * H, T, hd, T, "nt"), (B * H, T, T, hd, "nn")] * 3
    return out


def matmul_floor(shapes, dtype, reps):
    ops = []
    for b, m, k, n, tr in shapes:
        a = torch.randn(b, k, m, dtype=dtype).transpose(1, 2) if tr == "tn" else torch.randn(b, m, k, dtype=dtype)
        w = torch.randn(b, n, k, dtype=dtype).transpose(1, 2) if tr == "nt" else torch.randn(b, k, n, dtype=dtype)
        if b == 1:
            a, w = a[0], w[0]
        ops.append((a, w))
    total = sum(2 * b * m * k * n for b, m, k, n, _ in shapes)

    def run():
        for a, w in ops:
            torch.matmul(a, w)
    t = _time(run, reps)
    return t, total / t


def peak_section(args, report):
    print(f"\n== Peak matmul throughput, {torch.get_num_threads()} threads ({load()})")
    out = {}
    for dtype, name in [(torch.bfloat16, "bf16"), (torch.float32, "fp32")]:
        if args.wait_quiet:
            wait_quiet(args)
        n = args.square
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        t = _time(lambda a=a, b=b: a @ b, args.peak_reps)
        out[f"square {name}"] = 2 * n ** 3 / t
        print(f"  {n}x{n} @ {n}x{n} {name}: {2 * n ** 3 / t / 1e9:7.1f} GFLOP/s")
    for sname in args.shapes:
        L, H, d, T, B = SHAPES[sname]
        shapes = step_matmuls(L, d, T, B, args.vocab, H)
        for dtype, name in [(torch.bfloat16, "bf16"), (torch.float32, "fp32")]:
            if args.wait_quiet:
                wait_quiet(args)
            t, fl = matmul_floor(shapes, dtype, args.peak_reps)
            out[f"{sname} {name}"] = fl
            out[f"{sname} {name} floor ms"] = 1000 * t
            print(f"  {sname}: the step's {len(shapes)} matmuls at their own shapes, {name}: "
                  f"{fl / 1e9:7.1f} GFLOP/s, {1000 * t:6.2f} ms per step (matmul floor)")
        M = B * T
        for K, N in [(d, 4 * d), (4 * d, d)]:
            x, w = torch.randn(M, K, dtype=torch.bfloat16), torch.randn(K, N, dtype=torch.bfloat16)
            t = _time(lambda x=x, w=w: x @ w, args.peak_reps)
            print(f"    e.g. {M}x{K} @ {K}x{N} bf16: {2 * M * K * N / t / 1e9:6.1f} GFLOP/s")
    report["peak"] = out
    print(f"  ({load()})")
    return out


# ------------------------------------------------------------------------------------------- variants
LOWP = "engine_lowp"   # the name the prototype attention is registered under
_CAUSAL: dict = {}


def lowp_eager_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' eager attention with the scores, mask and softmax kept in the activations' dtype (bf16
    under autocast). Eager adds the fp32 mask to the bf16 scores, which turns the (B, H, T, T) scores to fp32
    for the mask, the softmax and their backward and casts them back: four passes over the largest
    activation for nothing, since the probabilities are rounded to bf16 for the AV matmul anyway. The forward
    output is identical to eager's in bf16; the softmax kernel accumulates in fp32 either way. It returns the
    weights like eager, but output_attentions still needs "eager" (transformers' check), which
    set_attn_implementation switches to when attention is to be shown."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    w = torch.matmul(query, key.transpose(-1, -2)) * scaling
    low = torch.finfo(w.dtype).min
    if attention_mask is None:   # the mask interface (sdpa's) skipped it: causal without padding
        if getattr(module, "is_causal", True) and w.shape[-2] > 1:
            q, k = w.shape[-2:]
            m = _CAUSAL.get((q, k, w.device))
            if m is None:
                m = _CAUSAL[(q, k, w.device)] = torch.ones(q, k, dtype=torch.bool, device=w.device).triu(k - q + 1)
            w = w.masked_fill(m, low)
    elif attention_mask.dtype == torch.bool:   # True where a query may attend
        w = w.masked_fill(~attention_mask, low)
    else:
        w = w + attention_mask.to(w.dtype)
    w = torch.softmax(w, dim=-1).to(value.dtype)
    w = F.dropout(w, p=dropout, training=module.training)
    return torch.matmul(w, value).transpose(1, 2), w


LOWP_ADD = "engine_lowp_add"   # the same, but the causal mask is a cached additive (T, T) tensor in the scores' dtype
_ADDITIVE: dict = {}


def lowp_add_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """As lowp_eager_attention, but without padding the causal mask is added (a cached (T, T) tensor of 0 and
    the dtype's minimum): an add's backward passes the gradient through untouched, where masked_fill's
    backward is another masked_fill over the scores."""
    if attention_mask is None and getattr(module, "is_causal", True) and query.shape[-2] > 1:
        if scaling is None:
            scaling = query.size(-1) ** -0.5
        w = torch.matmul(query, key.transpose(-1, -2)) * scaling
        q, k = w.shape[-2:]
        m = _ADDITIVE.get((q, k, w.dtype, w.device))
        if m is None:
            m = torch.zeros(q, k, dtype=w.dtype, device=w.device).masked_fill_(
                torch.ones(q, k, dtype=torch.bool, device=w.device).triu(k - q + 1), torch.finfo(w.dtype).min)
            _ADDITIVE[(q, k, w.dtype, w.device)] = m
        w = torch.softmax(w + m, dim=-1).to(value.dtype)
        w = F.dropout(w, p=dropout, training=module.training)
        return torch.matmul(w, value).transpose(1, 2), w
    return lowp_eager_attention(module, query, key, value, attention_mask, scaling, dropout, **kwargs)


def register_lowp():
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    AttentionInterface.register(LOWP, lowp_eager_attention)
    AttentionMaskInterface.register(LOWP, sdpa_mask)   # None when causal without padding, else a bool mask
    AttentionInterface.register(LOWP_ADD, lowp_add_attention)
    AttentionMaskInterface.register(LOWP_ADD, sdpa_mask)


register_lowp()


@dataclasses.dataclass(frozen=True)
class V:
    """One way to run the step. The defaults are what the engine did before issue 17 (BASE); BEST is what
    it does now (engine/core: fused AdamW, exact GELU, the `engine_eager` attention)."""
    attn: str = "eager"        # eager | sdpa (model.set_attn_implementation after build_model)
    prec: str = "autocast"     # autocast (bf16 autocast) | bf32 (fp32 model, oneDNN does matmuls in bf16) | fp32
                               # | o2: bf16 model (no casts at all), fp32 master weights in AdamW, copied back each step
    loss: str = "hf"           # hf: model(input_ids, labels).loss | own: shift once, CE on fp32 logits | own_bf16
    cache: bool | None = None  # use_cache passed to forward (None: config default, True for GPT2Config)
    opt: str = "loop"          # loop: AdamW's default on CPU (per-tensor for-loop) | foreach | fused
    clip: str = "torch"        # torch: clip_grad_norm_ | fused: one norm over all grads, one foreach mul
    sync: str = "item"         # item: loss.item() and grad_norm.item() every step (as the loop) | none
    batch: str = "stack"       # stack: torch.stack of windows each step (as pretraining) | pre: prebuilt
    act: str = "gelu_pytorch_tanh"  # the config's activation_function; "gelu": exact erf GELU (nanoGPT's nn.GELU())


BASE = V()
# The recommended combination (issue 17's findings). Everything in it leaves the model a
# GPT2LMHeadModel that from_pretrained loads.
BEST = V(attn=LOWP_ADD, act="gelu", opt="fused")   # = the recommended patch: fused AdamW, exact GELU, bf16 scores

CANDIDATES = {
    "baseline": BASE,
    "adamw-foreach": dataclasses.replace(BASE, opt="foreach"),
    "adamw-fused": dataclasses.replace(BASE, opt="fused"),
    "clip-fused": dataclasses.replace(BASE, clip="fused"),
    "use_cache=False": dataclasses.replace(BASE, cache=False),
    "own-loss-fp32": dataclasses.replace(BASE, loss="own"),
    "own-loss-bf16": dataclasses.replace(BASE, loss="own_bf16"),
    "sdpa": dataclasses.replace(BASE, attn="sdpa"),
    "attn-lowp": dataclasses.replace(BASE, attn=LOWP),
    "attn-lowp-add": dataclasses.replace(BASE, attn=LOWP_ADD),
    "gelu-erf": dataclasses.replace(BASE, act="gelu"),
    "bf32-no-autocast": dataclasses.replace(BASE, prec="bf32"),
    "no-item": dataclasses.replace(BASE, sync="none"),
    "prebuilt-batches": dataclasses.replace(BASE, batch="pre"),
    "fp32": dataclasses.replace(BASE, prec="fp32"),
    "bf16-o2": dataclasses.replace(BASE, prec="o2"),
    "best": BEST,
    "best+bf32": dataclasses.replace(BEST, prec="bf32"),
    "best+clip-fused": dataclasses.replace(BEST, clip="fused"),
    "best+own-loss": dataclasses.replace(BEST, loss="own"),
    "best-sdpa": dataclasses.replace(BEST, attn="sdpa"),
    "best+lowp-masked_fill": dataclasses.replace(BEST, attn=LOWP),
    "best+eager": dataclasses.replace(BEST, attn="eager"),
    "best+o2": dataclasses.replace(BEST, prec="o2"),
    "fused+gelu": dataclasses.replace(BASE, opt="fused", act="gelu"),
}


DEFAULT_CANDIDATES = ("adamw-foreach,adamw-fused,clip-fused,use_cache=False,own-loss-fp32,own-loss-bf16,sdpa,attn-lowp,"
                      "attn-lowp-add,gelu-erf,bf32-no-autocast,bf16-o2,no-item,prebuilt-batches,fp32,fused+gelu,best")


@contextlib.contextmanager
def precision(v: V):
    if v.prec == "bf32":
        old = torch.backends.mkldnn.matmul.fp32_precision
        torch.backends.mkldnn.matmul.fp32_precision = "bf16"
        try:
            yield
        finally:
            torch.backends.mkldnn.matmul.fp32_precision = old
    else:   # "o2": the model itself is bf16, nothing to cast
        with torch.autocast("cpu", torch.bfloat16, enabled=v.prec == "autocast"):
            yield


class Data:
    def __init__(self, vocab: int):
        text = TEXT.read_text()
        chars = sorted(set(text))
        assert len(chars) <= vocab
        stoi = {c: i for i, c in enumerate(chars)}
        ids = torch.tensor([stoi[c] for c in text], dtype=torch.long)
        n = int(0.9 * len(ids))
        self.train, self.val, self.vocab = ids[:n], ids[n:], vocab

    def starts(self, n_steps, T, B, seed=0):
        g = torch.Generator().manual_seed(seed)
        return [torch.randint(len(self.train) - T, (B,), generator=g) for _ in range(n_steps)]

    @staticmethod
    def windows(ids, starts, T):  # what engine/pretraining.py does per step
        return torch.stack([ids[s:s + T] for s in starts.tolist()])

    def val_batches(self, T, B, n=8):
        s = torch.linspace(0, len(self.val) - T - 1, n * B).long()
        return [self.windows(self.val, s[i:i + B], T) for i in range(0, n * B, B)]


class Trainer:
    """A faithful copy of engine/core/loop.py's step (AdamW in two groups, the transformers cosine
    schedule, clip, bf16 autocast around forward+loss, .item() per step, a record per step), with
    each candidate change behind a switch."""

    def __init__(self, v: V, shape, data: Data, steps_total: int, seed=0, lr=1e-3, warmup=100):
        L, H, d, T, B = shape
        self.v, self.T, self.B, self.data = v, T, B, data
        self.model = build_model("clm", data.vocab, L, H, d, T, seed, pad_id=0, eos_id=1)
        if v.attn != "eager":
            self.model.set_attn_implementation(v.attn)
        if v.act != self.model.config.activation_function:   # the same weights, another activation
            from transformers.activations import ACT2FN
            self.model.config.activation_function = v.act
            for block in self.model.transformer.h:
                block.mlp.act = ACT2FN[v.act]
        if v.prec == "fp32" or v.prec == "bf32":
            self.model.float()
        s = LoopSettings(steps=steps_total, lr=lr, warmup_steps=min(warmup, steps_total))
        self.s = s
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.master = None
        if v.prec == "o2":   # AdamW and the clip work on fp32 copies; the model runs in bf16
            self.master = [torch.nn.Parameter(p.detach().clone()) for p in self.params]
            self.model.to(torch.bfloat16)
            self.params = [p for p in self.model.parameters() if p.requires_grad]
        owned = self.master or self.params
        decay = [p for p in owned if p.dim() >= 2]
        no_decay = [p for p in owned if p.dim() < 2]
        kw = {"fused": True} if v.opt == "fused" else {"foreach": True} if v.opt == "foreach" else {}
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": s.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=s.lr, betas=s.betas, **kw)
        self.sched = get_scheduler("cosine_with_min_lr", self.opt, num_warmup_steps=s.warmup_steps,
                                   num_training_steps=s.steps,
                                   scheduler_specific_kwargs={"min_lr_rate": s.min_lr_ratio})
        self.fwd_kw = {} if v.cache is None else {"use_cache": v.cache}
        self.records, self.phases = [], []
        self.model.train()

    def loss(self, x):
        m, v = self.model, self.v
        if v.loss == "hf":
            return m(input_ids=x, labels=x, **self.fwd_kw).loss
        logits = m(input_ids=x, **self.fwd_kw).logits
        # every position but the last predicts the next token: the same tokens the model's own loss uses
        pred, tgt = logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)
        if v.loss == "own":
            return F.cross_entropy(pred.float(), tgt)
        with torch.autocast("cpu", enabled=False):  # own_bf16: log-softmax on the bf16 logits themselves
            return F.cross_entropy(pred, tgt)

    def clip(self):
        owned = self.master or self.params
        if self.v.clip == "torch":
            return torch.nn.utils.clip_grad_norm_(owned, self.s.grad_clip)
        grads = [p.grad for p in owned if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        torch._foreach_mul_(grads, torch.clamp(self.s.grad_clip / (norm + 1e-6), max=1.0))
        return norm

    def step(self, x_or_starts, step: int):
        ts = CLOCK()
        x = self.data.windows(self.data.train, x_or_starts, self.T) if self.v.batch == "stack" else x_or_starts
        with precision(self.v):
            loss = self.loss(x)
        tf = CLOCK()
        value = loss.item() if self.v.sync == "item" else loss.detach()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        tb = CLOCK()
        if self.master is not None:
            for m, p in zip(self.master, self.params):
                m.grad = p.grad.float()
        gn = self.clip()
        gn = gn.item() if self.v.sync == "item" else gn
        lr = self.opt.param_groups[0]["lr"]
        self.opt.step()
        if self.master is not None:
            with torch.no_grad():
                torch._foreach_copy_(self.params, self.master)
        self.sched.step()
        dt = CLOCK() - ts
        self.phases.append((tf - ts, tb - tf, ts + dt - tb))   # forward+loss, backward, clip+AdamW+schedule
        self.records.append({"step": step, "loss": value, "lr": lr, "grad_norm": gn,
                             "tokens_per_sec": x.numel() / dt, "step_ms": 1000 * dt})
        return dt

    def batches(self, starts):
        if self.v.batch == "stack":
            return starts
        return [self.data.windows(self.data.train, s, self.T) for s in starts]

    @torch.no_grad()
    def eval_loss(self, batches):
        self.model.eval()
        out = []
        with precision(dataclasses.replace(self.v, prec="fp32")):
            for x in batches:
                logits = self.model(input_ids=x, use_cache=False).logits.float()
                out.append(F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)).item())
        self.model.train()
        return sum(out) / len(out)


def loss_of(r):
    x = r["loss"]
    return x if isinstance(x, float) else float(x)


def interleaved(variants: dict, shape, data, args, steps=None, rounds=None, label=""):
    """All variants train side by side from the same init on the same batches; each pass gives each
    variant a block of `steps` steps, the order rotated every pass, so a neighbour's burst of load hits
    every variant alike. Returns {name: [median seconds per step of each block]} (one per pass)."""
    steps, rounds = steps or args.steps, rounds or args.rounds
    starts = data.starts(args.warm + steps * rounds, shape[3], shape[4])
    names = list(variants)
    trainers = {n: Trainer(variants[n], shape, data, steps_total=max(len(starts), 200)) for n in names}
    batches = {n: tr.batches(starts) for n, tr in trainers.items()}
    for n, tr in trainers.items():
        for i in range(args.warm):
            tr.step(batches[n][i], i + 1)
    res = defaultdict(list)
    loads = []
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        lo = args.warm + r * steps
        busy = []
        for n in order:
            busy.append(wait_quiet(args) if args.wait_quiet else 0.0)
            tr = trainers[n]
            res[n].append(statistics.median(tr.step(batches[n][i], i + 1) for i in range(lo, lo + steps)))
        loads.append(load() + (f", others {max(busy):.1f} cores at most" if args.wait_quiet else ""))
        if args.verbose:
            print(f"    pass {r + 1} {label}: " + ", ".join(f"{n} {1000 * res[n][-1]:.1f}" for n in names)
                  + f" ms ({loads[-1]})")
    return res, loads


# ------------------------------------------------------------------------------------------- util
def util_section(args, data, peak, report):
    print(f"\n== Utilisation: achieved FLOP/s of a training step, {torch.get_num_threads()} threads, "
          f"{args.rounds} interleaved passes of {args.steps}-step blocks after {args.warm} warm-up ({load()})")
    out = {}
    for sname in args.shapes:
        L, H, d, T, B = shape = SHAPES[sname]
        fl = flops_per_step(L, d, T, B, data.vocab)
        res, loads = interleaved({"before": BASE, "engine now": BEST}, shape, data, args, label=sname)
        print(f"  {sname} (L={L}, H={H}, d={d}, T={T}, B={B}, V={data.vocab}): {fl / 1e9:.2f} GFLOP per step")
        for name, ts in res.items():
            m, lo, hi = med_spread(ts)
            gfs = fl / m
            pk = peak.get("square bf16")
            ps = peak.get(f"{sname} bf16")
            ratio = f", {100 * gfs / pk:4.1f}% of the square bf16 peak" if pk else ""
            ratio += f", {100 * gfs / ps:4.1f}% of the step's own matmul shapes in bf16" if ps else ""
            print(f"    {name:13s} {1000 * m:6.1f} ms/step ({1000 * lo:.1f}-{1000 * hi:.1f}) = "
                  f"{gfs / 1e9:6.1f} GFLOP/s{ratio}")
            out[f"{sname} {name}"] = {"ms": 1000 * m, "lo": 1000 * lo, "hi": 1000 * hi, "gflops": gfs / 1e9}
        sp = [a / b for a, b in zip(res["before"], res["engine now"])]
        print(f"    speed-up {statistics.median(sp):.2f}x (passes {min(sp):.2f}-{max(sp):.2f}); {loads[-1]}")
    report["util"] = out


# ------------------------------------------------------------------------------------------- profile
CATS = ["matmul", "dtype casts", "layer norm", "GELU", "attention softmax/mask/scale", "attention reshapes/copies",
        "loss (CE, upcast, shift)", "embeddings", "residual adds, bias grads", "AdamW", "grad clip",
        "zero_grad", "autograd engine (nodes, AccumulateGrad)", "Python/dispatch in transformers modules",
        "Python in the loop (batch, item, sched, record)", "other ops"]
MATMUL = {"aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::addbmm", "aten::_mkldnn_matmul",
          "aten::mkldnn_matmul", "aten::_scaled_dot_product_flash_attention_for_cpu",
          "aten::_scaled_dot_product_flash_attention_for_cpu_backward"}
CASTS = {"aten::to", "aten::_to_copy", "aten::copy_"}


class Scopes:
    """Forward hooks that open a profiler range for each module of interest, so ops and Python time
    inside can be told apart, and backward ops mapped to the module whose forward made them."""

    def __init__(self, model):
        from transformers.models.gpt2.modeling_gpt2 import GPT2MLP, GPT2Attention, GPT2Block, GPT2Model
        self.handles = []
        for mod in model.modules():
            if isinstance(mod, torch.nn.LayerNorm):
                tag = "layer norm"
            elif isinstance(mod, torch.nn.Embedding):
                tag = "embeddings"
            elif isinstance(mod, GPT2Attention):
                tag = "attention"
            elif isinstance(mod, GPT2MLP):
                tag = "mlp"
            elif type(mod).__name__.lower().startswith(("gelu", "newgelu", "pytorchgelu")) or "GELU" in type(mod).__name__:
                tag = "GELU"
            elif isinstance(mod, GPT2Block):
                tag = "block"
            elif isinstance(mod, GPT2Model):
                tag = "model"
            elif mod is model:
                tag = "lm"
            else:
                continue
            self.handles.append(mod.register_forward_pre_hook(self._pre(tag)))
            self.handles.append(mod.register_forward_hook(self._post))
        self.stack = []
        lf = model.loss_function

        def loss_function(*a, **k):
            with torch.profiler.record_function("scope::loss"):
                return lf(*a, **k)
        model.loss_function = loss_function

    def _pre(self, tag):
        def hook(mod, args):
            rf = torch.profiler.record_function("scope::" + tag)
            rf.__enter__()
            self.stack.append(rf)
        return hook

    def _post(self, mod, args, out):
        self.stack.pop().__exit__(None, None, None)


def categorize(events):
    """Self CPU time (us) per category over the calling thread's events."""
    by_seq = {}
    for e in events:   # forward ops with an autograd node: remember which module made them
        if e.sequence_nr >= 0 and e.name.startswith("aten::") and not e.is_async:
            scope = _scope(e)
            if scope and e.sequence_nr not in by_seq:
                by_seq[e.sequence_nr] = (scope, e.name)
    out = defaultdict(float)
    for e in events:
        if e.is_async:
            continue
        out[_category(e, by_seq)] += e.self_cpu_time_total
    return out


def _ancestors(e):
    p = e.cpu_parent
    while p is not None:
        yield p
        p = p.cpu_parent


def _scope(e):
    for a in _ancestors(e):
        if a.name.startswith("scope::"):
            return a.name[7:]
    return None


def _phase(e):
    for a in [e, *_ancestors(e)]:
        n = a.name
        if n.startswith(("phase::", "Optimizer.")):
            return n
    return None


def _bwd_node(e):
    for a in [e, *_ancestors(e)]:
        if a.name.startswith("autograd::engine::evaluate_function: "):
            return a
    return None


def _category(e, by_seq):
    name, phase = e.name, _phase(e)
    if phase and phase.startswith("Optimizer.step"):
        return "AdamW"
    if phase and phase.startswith("Optimizer.zero_grad"):
        return "zero_grad"
    if phase == "phase::clip":
        return "grad clip"
    if phase in ("phase::batch", "phase::item", "phase::sched"):
        return "Python in the loop (batch, item, sched, record)"
    if name.startswith("phase::"):
        return "Python in the loop (batch, item, sched, record)"
    if name in MATMUL:
        return "matmul"
    bw = _bwd_node(e)
    if bw is not None:
        node = bw.name.split(": ", 1)[1]
        fwd_scope = None
        for c in bw.cpu_children:
            if c.sequence_nr in by_seq:
                fwd_scope = by_seq[c.sequence_nr][0]
        if node.startswith("ToCopyBackward") or name in CASTS and fwd_scope != "loss":
            return "loss (CE, upcast, shift)" if fwd_scope == "loss" else "dtype casts"
        if "AccumulateGrad" in node or name.startswith("autograd::engine") or name == node:
            return "autograd engine (nodes, AccumulateGrad)"
        return _by_scope(fwd_scope, node, name)
    scope = _scope(e)
    if name.startswith("scope::"):
        if name[7:] in ("loss",):
            return "loss (CE, upcast, shift)"
        return "Python/dispatch in transformers modules"
    if name in CASTS and scope != "loss":
        return "dtype casts"
    return _by_scope(scope, name, name)


def _by_scope(scope, node, name):
    low = (node + " " + name).lower()
    if scope == "loss" or "nll" in low or "log_softmax" in low or "logsoftmax" in low:
        return "loss (CE, upcast, shift)"
    if "layer_norm" in low or "layernorm" in low or scope == "layer norm":
        return "layer norm"
    if "gelu" in low or scope == "GELU":
        return "GELU"
    if scope == "attention":
        if "softmax" in low or "mul" in low or "add" in low or "where" in low or "masked" in low:
            return "attention softmax/mask/scale"
        return "attention reshapes/copies"
    if scope == "embeddings" or "embedding" in low or "index" in low:
        return "embeddings"
    if "sum" in low or "add" in low:
        return "residual adds, bias grads"
    if scope == "model" and ("where" in low or "arange" in low or "mask" in low):
        return "attention softmax/mask/scale"
    return "other ops"


def profile_section(args, data, report):
    from torch.profiler import ProfilerActivity, profile, record_function
    print(f"\n== Profile: share of the step's time by category, {torch.get_num_threads()} threads, "
          f"{args.profile_steps} steps ({load()})")
    out = {}
    for sname in args.profile_shapes:
        shape = SHAPES[sname]
        cols = {}
        for vname in args.profile_variants:
            v = CANDIDATES[vname]
            tr = Trainer(v, shape, data, steps_total=200)
            starts = data.starts(args.warm + args.profile_steps, shape[3], shape[4])
            bs = tr.batches(starts)
            for i in range(args.warm):
                tr.step(bs[i], i + 1)
            if args.wait_quiet:
                wait_quiet(args)
            scopes = Scopes(tr.model)
            orig_clip, orig_step = tr.clip, tr.step

            def clip(orig_clip=orig_clip):
                with record_function("phase::clip"):
                    return orig_clip()
            tr.clip = clip
            wall = 0.0
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for i in range(args.warm, args.warm + args.profile_steps):
                    t0 = time.perf_counter()   # wall time whatever --clock says: the profiler's times are wall times
                    with record_function("phase::step"):
                        orig_step(bs[i], i + 1)
                    wall += time.perf_counter() - t0
            for h in scopes.handles:
                h.remove()
            cats = categorize(list(prof.events()))
            # the step's wall time not inside any recorded op: Python in the loop body itself
            covered = sum(cats.values()) - cats.get("Python in the loop (batch, item, sched, record)", 0)
            cats["Python in the loop (batch, item, sched, record)"] = max(0.0, wall * 1e6 - covered)
            total = sum(cats.values())
            cols[vname] = ({k: 100 * cats.get(k, 0) / total for k in CATS}, wall / args.profile_steps)
        print(f"  {sname}: per step under the profiler: " +
              ", ".join(f"{n} {1000 * w:.1f} ms" for n, (_, w) in cols.items()))
        w = max(16, *(len(n) + 2 for n in cols))
        print(f"    {'category':48s}" + "".join(f"{n:>{w}s}" for n in cols) + "   (% of the step; ms per step)")
        for k in CATS:
            print(f"    {k:48s}" + "".join(f"{c[k]:{w - 8}.1f}% {c[k] * t * 10:5.2f}" for c, t in cols.values()))
        out[sname] = {n: c for n, (c, _) in cols.items()}
    report["profile"] = out
    print(f"  ({load()})")


# ------------------------------------------------------------------------------------------- ab
def pair(a: V, b: V, shape, data, args):
    """Baseline a and candidate b side by side from the same init on the same batches, in alternating
    blocks (A B, B A, A B...) so drift and a neighbour's bursts hit both alike. Returns both lists of
    per-step times (seconds) and the per-block-pair ratios of their medians (a/b: b's speed-up)."""
    n = args.warm + args.pairs * args.block
    starts = data.starts(n, shape[3], shape[4])
    ta, tb = Trainer(a, shape, data, steps_total=max(n, 200)), Trainer(b, shape, data, steps_total=max(n, 200))
    ba, bb = ta.batches(starts), tb.batches(starts)
    for i in range(args.warm):
        ta.step(ba[i], i + 1)
        tb.step(bb[i], i + 1)
    ra, rb, ratios = [], [], []
    for k in range(args.pairs):
        lo = args.warm + k * args.block
        if args.wait_quiet:
            wait_quiet(args)
        order = [(ta, ba, ra), (tb, bb, rb)] if k % 2 == 0 else [(tb, bb, rb), (ta, ba, ra)]
        for tr, bs, out in order:
            out.append([tr.step(bs[i], i + 1) for i in range(lo, lo + args.block)])
        ratios.append(statistics.median(ra[-1]) / statistics.median(rb[-1]))
    return [t for blk in ra for t in blk], [t for blk in rb for t in blk], ratios


def quartiles(xs):
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
    return q[0], q[1], q[2]


def p10(xs):
    return statistics.quantiles(xs, n=10, method="inclusive")[0] if len(xs) > 1 else xs[0]


def ab_section(args, data, report):
    shape = SHAPES[args.ab_shape]
    print(f"\n== A/B at {args.ab_shape}, {torch.get_num_threads()} threads, {args.clock} clock: each candidate "
          f"against its reference in {args.pairs} alternating pairs of {args.block}-step blocks ({load()})")
    print("  Noise only ever adds time, so the 10th percentile of step times (p10) estimates the unloaded speed;")
    print("  the block pairs' ratios say how consistent the difference was.")
    print(f"  {'candidate':22s} {'vs':16s} {'ref p10':>8s} {'cand p10':>8s} {'p10 ratio':>9s}   block-pair ratios: "
          f"median (quartiles)")
    out = {}
    tests = [("baseline", c) for c in args.candidates if c != "baseline"]
    if args.leave_one_out:   # what each part of the recommended set adds on top of the others
        for field_ in ("opt", "attn", "act", "cache", "loss", "clip", "prec"):
            if getattr(BEST, field_) == getattr(BASE, field_):
                continue
            name = f"best without {field_}"
            CANDIDATES[name] = dataclasses.replace(BEST, **{field_: getattr(BASE, field_)})
            tests.append((name, "best"))
    for ref, cand in tests:
        ta, tb, ratios = pair(CANDIDATES[ref], CANDIDATES[cand], shape, data, args)
        q1, q2, q3 = quartiles(ratios)
        print(f"  {cand:22s} {ref:16s} {1000 * p10(ta):8.1f} {1000 * p10(tb):8.1f} {p10(ta) / p10(tb):8.2f}x   "
              f"{q2:5.2f}x ({q1:.2f}-{q3:.2f})   {load()}")
        out[f"{cand} vs {ref}"] = {"ref_ms": 1000 * p10(ta), "ms": 1000 * p10(tb), "speedup": p10(ta) / p10(tb),
                                   "pairs_median": q2, "q1": q1, "q3": q3}
    report["ab"] = out


def parity_section(args, data, report):
    shape = SHAPES[args.ab_shape]
    n = args.parity_steps
    names = ["baseline"] + [c for c in args.candidates if c != "baseline"]
    seeds = [int(x) for x in str(args.parity_seeds).split(",")]
    print(f"\n== Loss parity at {args.ab_shape}: {n} steps (lr 1e-3, warmup 100, cosine over {n}), same init and "
          f"batches per seed, seeds {seeds}; val over {args.val_batches} batches of fixed windows ({load()})")
    vb = data.val_batches(shape[3], shape[4], n=args.val_batches)
    out = {}
    for seed in seeds:
        starts = data.starts(n, shape[3], shape[4], seed=seed)
        ref = None
        for name in names:
            tr = Trainer(CANDIDATES[name], shape, data, steps_total=n, seed=seed)
            bs = tr.batches(starts)
            for i in range(n):
                tr.step(bs[i], i + 1)
            tail = [loss_of(r) for r in tr.records[-20:]]
            train, val = sum(tail) / len(tail), tr.eval_loss(vb)
            ref = ref or (train, val)
            print(f"  seed {seed} {name:20s} train (mean of last 20 steps) {train:.4f} ({train - ref[0]:+.4f})   "
                  f"val {val:.4f} ({val - ref[1]:+.4f})   {load()}", flush=True)
            out[f"{name} seed {seed}"] = {"train": train, "val": val}
    if len(seeds) > 1:
        for name in names:
            vals = [out[f"{name} seed {s_}"]["val"] for s_ in seeds]
            print(f"  {name:20s} median val over seeds {statistics.median(vals):.4f}  ({', '.join(f'{v:.4f}' for v in vals)})")
    report["parity"] = out


def floor_phases(args, data, report):
    """Per-phase p10 times at the toy shape and at the A/B shape, baseline and recommended."""
    L = SHAPES[args.ab_shape][0]
    print(f"\n== Dispatch floor: the step at a toy shape ({L} layers at width 8, 8 tokens, batch 1: no arithmetic "
          f"to speak of) against the real one; {torch.get_num_threads()} threads, {args.clock} clock ({load()})")
    print(f"  {'':24s} {'step':>7s} {'fwd+loss':>9s} {'backward':>9s} {'clip+opt':>9s}   ms, p10 over "
          f"{args.pairs} alternating block pairs")
    out = {}
    for sname, shp in [("toy", (L, 1, 8, 8, 1)), (args.ab_shape, SHAPES[args.ab_shape])]:
        n = args.warm + args.pairs * args.block
        starts = data.starts(n, shp[3], shp[4])
        trs = {v: Trainer(CANDIDATES[v], shp, data, steps_total=max(n, 200)) for v in ("baseline", "best")}
        bs = {v: tr.batches(starts) for v, tr in trs.items()}
        for k in range(n // args.block):
            for v in (("baseline", "best") if k % 2 == 0 else ("best", "baseline")):
                for i in range(k * args.block, (k + 1) * args.block):
                    trs[v].step(bs[v][i], i + 1)
        for v, tr in trs.items():
            ph = tr.phases[args.warm:]
            cols = [p10([sum(p) for p in ph])] + [p10([p[j] for p in ph]) for j in range(3)]
            print(f"  {v + ' at ' + sname:24s} " + " ".join(f"{1000 * c:8.2f}" for c in cols))
            out[f"{v} {sname}"] = [1000 * c for c in cols]
    report["floor"] = out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per variant per pass (a block)")
    ap.add_argument("--warm", type=int, default=5, help="untimed steps first")
    ap.add_argument("--rounds", type=int, default=8, help="passes: interleaved blocks per variant")
    ap.add_argument("--vocab", type=int, default=101, help="101: the engine's char tokenizer on tinyshakespeare")
    ap.add_argument("--square", type=int, default=1024)
    ap.add_argument("--peak-reps", type=int, default=5)
    ap.add_argument("--shapes", default="nanogpt,200k,1M")
    ap.add_argument("--profile-shapes", default="nanogpt")
    ap.add_argument("--profile-steps", type=int, default=20)
    ap.add_argument("--profile-variants", default="baseline,best", help="names from the candidates")
    ap.add_argument("--ab-shape", default="nanogpt")
    ap.add_argument("--candidates", default=DEFAULT_CANDIDATES, help=f"any of: {', '.join(CANDIDATES)}")
    ap.add_argument("--pairs", type=int, default=16, help="A/B: alternating block pairs per candidate")
    ap.add_argument("--block", type=int, default=4, help="A/B: steps per block")
    ap.add_argument("--leave-one-out", action="store_true", help="A/B: also the recommended set minus each part")
    ap.add_argument("--parity-steps", type=int, default=300)
    ap.add_argument("--parity-seeds", default="0")
    ap.add_argument("--val-batches", type=int, default=8, help="parity: validation batches (of B windows)")
    ap.add_argument("--only", default="peak,util,profile,ab,parity,floor")
    ap.add_argument("--quick", action="store_true", help="4 passes of 8-step blocks, 8 A/B pairs, parity over 150 steps")
    ap.add_argument("--verbose", action="store_true", help="print every pass")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: time steps by this thread's CPU time, immune to being descheduled (needs --threads 1)")
    ap.add_argument("--wait-quiet", type=float, default=0.0,
                    help="before each block wait up to this many seconds for the rest of the machine to go quiet")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.parity_steps, args.peak_reps, args.pairs = 4, 8, 150, 3, 8
    args.shapes = args.shapes.split(",")
    args.profile_shapes = args.profile_shapes.split(",")
    args.profile_variants = args.profile_variants.split(",")
    args.candidates = args.candidates.split(",")
    only = set(args.only.split(","))
    torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        if args.threads != 1:
            ap.error("--clock cpu counts only this thread: use it with --threads 1")
        global CLOCK
        CLOCK = time.thread_time
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"uptime: {os.popen('uptime').read().strip()}")
    data = Data(args.vocab)
    report, peak = {}, {}
    t0 = time.perf_counter()
    if "peak" in only:
        peak = peak_section(args, report)
    if "util" in only:
        util_section(args, data, peak, report)
    if "profile" in only:
        profile_section(args, data, report)
    if "ab" in only:
        ab_section(args, data, report)
    if "parity" in only:
        parity_section(args, data, report)
    if "floor" in only:
        floor_phases(args, data, report)
    print(f"\n{time.perf_counter() - t0:.0f} s; uptime: {os.popen('uptime').read().strip()}")
    return report


if __name__ == "__main__":
    main()
