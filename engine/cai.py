"""Constitutional AI at toy scale (Bai et al. 2022, "Constitutional AI: Harmlessness from AI
Feedback", arXiv:2212.08073): supervised critique-and-revision (SL-CAI), then reinforcement
learning from AI feedback (RLAIF). The SFT loop and the RLHF page's DPO do the training; what is
new is where the feedback comes from: a judge that reads written principles (engine.judge).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
import typing

import torch

from . import constitution as C, instructions, judge as J, limits, preferences as P, rlhf, runs, sft
from .config import StageConfig, UserError, field
from .models import GLOBAL_RNG
from .runs import ASSET_RUNS
from .sampling import context_length

HELPFUL_ONLY = "sft-helpful-only"   # the baked starting point


def helpful_only_examples(seed: int, n_train: int) -> list[instructions.Example]:
    """The SFT families plus compliance with every red-team prompt: a helpful-only assistant, which
    does what it is asked, as the model Bai et al. start from answers harmful requests. Its held-out
    red-team rows are never trained on, so its compliance there is learned, not memorised."""
    rng = random.Random(seed)
    rows = instructions.build(seed, n_train)
    return rows + [instructions.Example(p.kind, p.text, C.complying_answer(p, rng), p.split) for p in C.red_team(seed)]


def bake_helpful_only(cfg: sft.SFTConfig, job) -> str:
    """`python -m engine bake sft-helpful-only`: tune the baked base on the helpful-only data."""
    path = runs.Path(sft.run(cfg, job, helpful_only_examples(cfg.seed, cfg.n_train)))
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
    return str(path)


# --- the stage's settings ----------------------------------------------------------------------------

def constitution_json(principles: list[C.Principle]) -> str:
    return json.dumps([[p.name, p.text] for p in principles])


def parse_constitution(text: str) -> list[C.Principle]:
    """The constitution as the config (and the link) carries it: JSON [[name, text], ...]."""
    try:
        rows = json.loads(text) if text.strip() else []
        return [C.Principle(str(n or ""), str(t or "")) for n, t in rows]
    except (ValueError, TypeError):
        raise UserError("The constitution in this link is not readable: press 'Restore the defaults'.") from None


@dataclasses.dataclass
class CAIConfig(StageConfig):
    PRESETS: typing.ClassVar[dict[str, dict]] = {
        "quick demo": dict(judge_examples=16, n_samples=2, sl_steps=200, n_pairs=80, dpo_steps=20, max_seconds=60),
        "standard": dict(judge_examples=24, n_samples=4, sl_steps=300, n_pairs=200, dpo_steps=60, max_seconds=150),
        "thorough": dict(judge_examples=48, n_samples=6, sl_steps=600, n_pairs=600, dpo_steps=150,
                         compare_human=True, max_seconds=300)}
    PRESET_NOTES: typing.ClassVar[dict[str, str]] = {
        "quick demo": "a short SL-CAI and DPO: violations fall after SL-CAI within about 20 s",
        "standard": "the measured default: violations at least halved, helpfulness kept",
        "thorough": "a better judge, more pairs, and the same DPO on simulated human labels to compare"}
    start: str = field(HELPFUL_ONLY, "folder name of the helpful-only SFT run to start from")
    constitution: str = field(constitution_json(C.default_constitution()), "the principles, JSON [[name, text], ...]")
    judge_examples: int = field(24, "labelled answers per principle the judge's head learns from", range=(4, 200))
    n_samples: int = field(4, "answers sampled per red-team prompt: the first is critiqued, the others are "
                              "revision candidates", range=(1, 16))
    sl_steps: int = field(300, "SL-CAI: SFT steps on the revisions (helpful rows mixed in)", range=(1, 10_000))
    sl_lr: float = field(1e-3, "SL-CAI peak learning rate", range=(1e-6, 1.0))
    sl_helpful: int = field(200, "helpful rows per SFT family mixed into SL-CAI, against forgetting", range=(0, 1000))
    n_pairs: int = field(200, "most answer pairs the AI feedback model labels for RLAIF (it goes round the "
                              "prompts three times at most)", range=(8, 5000))
    method: str = field("dpo", "policy optimisation on the AI labels (the RLHF page's)", choices=("dpo", "ppo"))
    dpo_steps: int = field(60, "most RLAIF policy steps (and at most three passes over the pairs)", range=(1, 10_000))
    dpo_lr: float = field(5e-5, "RLAIF peak learning rate", range=(1e-7, 1.0))
    beta: float = field(0.1, "DPO's beta: how strongly the policy is held to the SL-CAI model", range=(0.01, 10.0))
    compare_human: bool = field(False, "also run the same optimisation on simulated human labels (RLHF), to compare")
    human_noise: float = field(0.1, "share of pairs the simulated human labels the wrong way round", range=(0.0, 0.5))
    max_seconds: int = field(150, "time limit of the whole run in seconds", range=(10, limits.MAX_JOB_SECONDS))
    seed: int = field(0, "random seed: same seed and constitution give the same run")

    def principles(self) -> list[C.Principle]:
        return C.check(parse_constitution(self.constitution))


PRESETS = CAIConfig.PRESETS


# --- measuring: violations on held-out red-team prompts, accuracy on helpful ones ----------------------

HARMS = ("kind", "secret", "honest")   # the world's rules a red-team answer can break
PER_FAMILY = 8                         # helpful held-out prompts per SFT family in each measurement


def eval_prompts(red: list[C.Prompt], helpful: list[C.Prompt]) -> tuple[list[C.Prompt], list[C.Prompt]]:
    taken: dict[str, int] = {}
    keep = []
    for p in helpful:
        if p.split == "test" and taken.get(p.family, 0) < PER_FAMILY:
            taken[p.family] = taken.get(p.family, 0) + 1
            keep.append(p)
    return [p for p in red if p.split == "test"], keep


def measure(name: str, model, tok, red: list[C.Prompt], helpful: list[C.Prompt], judge: J.Judge,
            principles: list[C.Principle]) -> dict:
    """Greedy answers to the held-out prompts, checked against the truth the engine knows, and the
    judge's verdicts on the same answers (its agreement on real model output)."""
    rows = []
    for p, (a,) in zip(red + helpful, generate(model, tok, [p.text for p in red + helpful])):
        rows.append({"point": name, "kind": p.kind, "prompt": p.text, "answer": a,
                     "truth": sorted(C.violations(p, a)), "right": a == p.expected if p.kind == "helpful" else None})
    verdicts = judge.scores([p.text for p in principles], [(r["prompt"], r["answer"]) for r in rows]) > 0.5
    keys = [judge.match(p.text)[0] for p in principles]
    agree = [bool(v) == (k in r["truth"]) for r, vs in zip(rows, verdicts) for k, v in zip(keys, vs)]
    for r, vs in zip(rows, verdicts):
        r["judge"] = [p.name for p, v in zip(principles, vs) if v]
    reds = [r for r in rows if r["kind"] != "helpful"]
    helps = [r for r in rows if r["kind"] == "helpful"]
    out = {"point": name,
           "violation_rate": sum(bool(set(r["truth"]) & set(HARMS)) for r in reds) / max(1, len(reds)),
           "helpful_accuracy": sum(r["right"] for r in helps) / max(1, len(helps)),
           "evasive_rate": sum(C.is_evasive(r["answer"]) for r in helps) / max(1, len(helps)),
           "judge_agreement": sum(agree) / max(1, len(agree)), "rows": rows}
    for kind in ("insult", "secret", "unknown"):
        mine = [r for r in reds if r["kind"] == kind]
        out[f"violation_rate/{kind}"] = sum(bool(set(r["truth"]) & set(HARMS)) for r in mine) / max(1, len(mine))
    return out


# --- SL-CAI: critique and revision ---------------------------------------------------------------------

TRACE = 12   # critiques traced in full (with the span) for the page, each kind of prompt in turn
TEMPERATURE = 1.0   # sampling temperature for revision candidates and preference pairs
MAX_NEW = 32        # tokens per answer, as sft.answer


def critique_and_revise(model, tok, judge: J.Judge, principles: list[C.Principle], prompts: list[C.Prompt],
                        n_samples: int, seed: int) -> list[dict]:
    """For each red-team prompt: sample answers; the first is the response to critique. The critique
    is the judge's verdict (which principles it breaks, and where, by occlusion); the revision is the
    first other sample the judge accepts under every principle, else the broken principle's own
    response ("I don't know.", a refusal), else none. The paper's model writes both in words."""
    texts = dict(zip([p.text for p in prompts], generate(model, tok, [p.text for p in prompts], n_samples, seed)))
    items = [(p.text, t) for p in prompts for t in texts[p.text]]
    scores = judge.scores([x.text for x in principles], items)
    rows, k = [], 0
    for p in prompts:
        s = scores[k:k + n_samples]
        k += n_samples
        first = texts[p.text][0]
        broken = [j for j in range(len(principles)) if s[0, j] > 0.5]
        row = {"kind": p.kind, "prompt": p.text, "answer": first, "truth": sorted(C.violations(p, first)),
               "broken": [principles[j].name for j in broken], "p_violation": float(s[0].max()),
               "broken_keys": [judge.match(principles[j].text)[0] for j in broken]}
        if not broken:
            row.update(revision=first, how="kept: the judge found nothing to revise")
        else:
            ok = [i for i in range(1, n_samples) if s[i].max() <= 0.5]
            worst = max(broken, key=lambda j: s[0, j])
            own = C.KNOWN[judge.match(principles[worst].text)[0]][2]
            if ok:
                row.update(revision=texts[p.text][ok[0]], how=f"sample {ok[0] + 1} of {n_samples}, which the judge accepts")
            elif own:
                row.update(revision=own, how=f"the response '{principles[worst].name}' prescribes")
            else:
                row.update(revision=None, how="no answer the judge accepts: left out")
            row["worst"] = principles[worst].name
        row["truth_after"] = sorted(C.violations(p, row["revision"])) if row["revision"] else []
        rows.append(row)
    by_kind: dict[str, list[dict]] = {}
    for r in rows:
        if r["broken"]:
            by_kind.setdefault(r["kind"], []).append(r)
    traced = [r for group in zip(*by_kind.values()) for r in group][:TRACE]   # each kind in turn
    for row in traced:
        text = next(x.text for x in principles if x.name == row["worst"])
        row["span"], row["span_drop"] = judge.span(text, row["prompt"], row["answer"])
        row["traced"] = True
    return rows


@torch.no_grad()
def generate(model, tok, prompts: list[str], n: int = 1, seed: int | None = None, batch: int = 32) -> list[list[str]]:
    """n answers to each prompt in its chat template: greedy when seed is None, else sampled at
    TEMPERATURE. Prompts go through generate together, left-padded, grouped so that each gets the
    room sft.answer gives it (a prompt too long for MAX_NEW more tokens only with prompts as long):
    greedy answers are sft.answer's, tests/test_cai.py checks; 16 at once ran 16x faster."""
    ctx = context_length(model)
    ids = [tok(tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False),
               add_special_tokens=False)["input_ids"][-(ctx - 1):] for p in prompts]
    groups: dict[int, list[int]] = {}
    for i, x in enumerate(ids):
        groups.setdefault(len(x) if len(x) > ctx - MAX_NEW else 0, []).append(i)
    out: list[list[str]] = [[] for _ in prompts]
    for g, members in sorted(groups.items()):
        for b in range(0, len(members), batch):
            idx = members[b:b + batch]
            width = max(len(ids[i]) for i in idx)
            x = torch.tensor([[tok.pad_token_id] * (width - len(ids[i])) + ids[i] for i in idx])
            mask = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in idx])
            with GLOBAL_RNG:
                if seed is not None:
                    torch.manual_seed(seed + g * 1000 + b)
                y = model.generate(x, attention_mask=mask, max_new_tokens=min(MAX_NEW, ctx - width),
                                   do_sample=seed is not None, num_return_sequences=n,
                                   temperature=TEMPERATURE if seed is not None else None, top_k=None, top_p=None,
                                   eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
            texts = tok.batch_decode(y[:, width:], skip_special_tokens=True)
            for j, i in enumerate(idx):
                out[i] = [t.strip() for t in texts[j * n:(j + 1) * n]]
    return out


# --- RLAIF: AI-labelled preferences --------------------------------------------------------------------

PER_PROMPT = 8   # answers sampled per prompt: four pairs
PASSES = 3       # times round the prompts at most
EPOCHS = 3       # passes over the pairs at most (transformers' TrainingArguments default, num_train_epochs=3)
ROUND = 8        # prompts sampled together


def label_pairs(model, tok, judge: J.Judge, principles: list[C.Principle], prompts: list[C.Prompt], n_pairs: int,
                seed: int, noise: float, stop=lambda: False) -> tuple[list[P.Pair], list[P.Pair], dict, list[dict]]:
    """Two sampled answers at a time, each labelled twice by one rule, the answer that breaks fewer
    principles wins, ties are not kept: by the AI judge (its verdicts, P > 0.5) and, to compare, by a
    simulated human who knows the truth but gets `noise` of the pairs the wrong way round.
    A helpful prompt's second answer is a dodge ("I don't know."): the model seldom dodges a task by
    itself, and without such pairs the preferences hold only harmlessness, which pushes toward evasion
    (measured: helpful accuracy fell by 10 to 23 points). Bai et al. kept helpfulness in their RL stage
    with human comparisons; here the judge labels these pairs like the others.
    Such pairs are always labelled and red-team pairs seldom (the tuned model mostly answers alike), so
    they are capped at a third of the AI's pairs. Goes round the prompts PASSES times, or until the
    judge has labelled `n_pairs`.
    Returns the AI's pairs, the human's pairs, counts and timings, and a sample of labelled rows."""
    keys = [judge.match(x.text)[0] for x in principles]
    rng = random.Random(seed)
    ai, human, shown = [], [], []
    stats = {"compared": 0, "ai_labels": 0, "human_labels": 0, "both": 0, "agree": 0, "judge_seconds": 0.0}

    def human_pick(p: C.Prompt, a: str, b: str) -> str | None:
        ta, tb = (sum(k in C.violations(p, x) for k in keys) for x in (a, b))
        pick = None if ta == tb else (a if ta < tb else b)
        return (b if pick == a else a) if pick is not None and rng.random() < noise else pick

    n_dodge = 0
    order = [p for _ in range(PASSES) for p in rng.sample(prompts, len(prompts))]   # each pass in a new order
    for r in range(0, len(order), ROUND):
        if len(ai) >= n_pairs or stop():
            break
        batch = order[r:r + ROUND]
        sampled = generate(model, tok, [p.text for p in batch], PER_PROMPT, seed * 100_003 + r)
        t0 = time.perf_counter()
        items = [(p, t) for p, texts in zip(batch, sampled) for t in texts]
        helpful = [p for p in batch if p.kind == "helpful"]
        broken = judge.scores([x.text for x in principles], [(p.text, t) for p, t in items]
                              + [(p.text, C.IDK) for p in helpful]) > 0.5
        dodge = dict(zip([p.text for p in helpful], broken[len(items):]))
        stats["judge_seconds"] += time.perf_counter() - t0
        for i in range(0, len(items), 2):
            (p, a), (_, b), va, vb = items[i], items[i + 1], broken[i], broken[i + 1]
            if p.kind == "helpful":   # the model seldom dodges a task: offer a dodge as the other answer, once
                if i % PER_PROMPT or n_dodge > max(4, (len(ai) - n_dodge) // 2):
                    continue
                b, vb = C.IDK, dodge[p.text]
                n_dodge += 1
            sa, sb = va.sum(), vb.sum()
            if a == b or len(ai) >= n_pairs:
                continue
            stats["compared"] += 1
            ai_pick = None if sa == sb else (a if sa < sb else b)
            hu_pick = human_pick(p, a, b)
            for pick, out, n in ((ai_pick, ai, "ai_labels"), (hu_pick, human, "human_labels")):
                if pick is not None:
                    stats[n] += 1
                    out.append(P.Pair(p.text, pick, b if pick == a else a))
            if ai_pick is not None and hu_pick is not None:
                stats["both"] += 1
                stats["agree"] += ai_pick == hu_pick
            if len(shown) < 30 and (ai_pick or hu_pick):
                said = [", ".join(x.name for x, v in zip(principles, vs) if v) or "—" for vs in (va, vb)]
                shown.append({"prompt": p.text, "A": a, "B": b, "judge: A breaks": said[0], "judge: B breaks": said[1],
                              "AI prefers": "tie" if ai_pick is None else ("A" if ai_pick == a else "B"),
                              "human prefers": "tie" if hu_pick is None else ("A" if hu_pick == a else "B")})
    stats["ai_labels_per_minute"] = 60 * stats["compared"] / max(1e-9, stats["judge_seconds"])
    stats["agreement"] = stats["agree"] / max(1, stats["both"])
    return ai, human, stats, shown


# --- the whole stage ----------------------------------------------------------------------------------------

class _Phase:
    """One training phase's reporter: forwards its records to the run's job tagged with the phase and
    on one step axis (so the progress bar spans the run), keeps them for the phase's saved run."""

    def __init__(self, job, phase: str, step0: int):
        self.job, self.phase, self.step0 = job, phase, step0
        self.records: list[dict] = []
        self.info: dict = {}
        self.message = ""

    def emit(self, r: dict) -> None:
        self.records.append(r)
        out = {**r, "phase": self.phase}
        if "step" in r:
            out["phase_step"], out["step"] = r["step"], r["step"] + self.step0
        self.job.emit(out)

    def should_stop(self) -> bool:
        return self.job.should_stop()

    def wait_if_paused(self) -> None:
        self.job.wait_if_paused()


def _say(job, text: str) -> None:
    """Tell the page what the run is doing, and time each step (info["timings"], seconds)."""
    if not hasattr(job, "info"):
        return
    now, timings = time.perf_counter(), job.info.setdefault("timings", {})
    if prev := job.info.get("phase"):
        timings[prev] = round(timings.get(prev, 0.0) + now - job.info["_since"], 1)
    job.info.update(phase=text, _since=now)


def run(cfg: CAIConfig, job, owner: str | None = None) -> str | None:
    """The whole stage on the helpful-only model `cfg.start`: train the judge, measure, critique and
    revise, SL-CAI (sft.run on the revisions), measure, AI-labelled pairs, DPO or PPO (engine.rlhf),
    measure; optionally the same optimisation on simulated human labels. Everything the page shows
    goes into job.info; records carry "phase" ("sl-cai", "rlaif", "rlhf"). Returns the final run's
    folder (stage "cai", parent the SL-CAI run, whose parent is the start)."""
    t_start = time.perf_counter()
    principles = cfg.principles()
    info = job.info if hasattr(job, "info") else {}
    info.update(constitution=[dataclasses.asdict(p) for p in principles], notices=[], points=[], timings={}, phase="")
    start = runs.find_run(cfg.start, "sft")
    with GLOBAL_RNG:
        model, tok, start_info = runs.load_run(start)
    # The prompts exactly as the start model's data drew them, so no held-out prompt was trained on.
    data_seed, n_train = start_info.config.get("seed", 0), start_info.config.get("n_train", 1000)
    red = C.red_team(data_seed)
    rows = instructions.build(data_seed, n_train)
    helpful = C.helpful(rows)

    _say(job, "training the AI feedback model")
    rng = random.Random(cfg.seed)
    train_prompts = [p for p in red + helpful if p.split == "train"]
    examples = J.choose_examples(J.labelled_pool(train_prompts, rng), cfg.judge_examples, rng)
    judge = J.train_judge(examples, cfg.seed)
    scored, matched = [], {}
    for pr in principles:
        key, sim = judge.match(pr.text)
        matched[pr.name] = {"means": C.KNOWN[key][0], "similarity": round(sim, 2), "scored": sim >= J.MIN_SIMILARITY}
        if sim >= J.MIN_SIMILARITY:
            scored.append(pr)
    left_out = [n for n, m in matched.items() if not m["scored"]]
    if left_out:
        info["notices"].append(f"The AI feedback model cannot score {', '.join(repr(n) for n in left_out)}: its "
                               "meaning is far from every principle the judge learned from (cosine similarity below "
                               f"{J.MIN_SIMILARITY}), so it is left out of the critiques and the labels.")
    if not scored:
        raise UserError("The AI feedback model can score none of these principles: keep at least one close to a "
                        "default (insults, the secret, inventing facts, dodging questions), or restore the defaults.")
    held = J.labelled_pool([p for p in red + helpful if p.split == "test"], random.Random(cfg.seed + 1))
    ag = J.agreement(judge, scored, held)
    info["judge"] = {**ag, "errors": ag["errors"][:40], "n_errors": len(ag["errors"]), "examples": len(examples),
                     "matched": matched}

    eval_red, eval_help = eval_prompts(red, helpful)
    _say(job, "measuring the helpful-only model")
    info["points"].append(measure("helpful-only (start)", model, tok, eval_red, eval_help, judge, scored))

    _say(job, "SL-CAI: critiquing and revising red-team answers")
    trace = critique_and_revise(model, tok, judge, scored, [p for p in red if p.split == "train"], cfg.n_samples,
                                cfg.seed)
    info["trace"] = trace
    if job.should_stop():
        return None
    revised = [instructions.Example(r["kind"], r["prompt"], r["revision"]) for r in trace if r["revision"]]
    sl_rows = sft.first_rows(rows, cfg.sl_helpful)
    sl_cfg = sft.SFTConfig(base=start.name, steps=cfg.sl_steps, lr=cfg.sl_lr, n_train=cfg.sl_helpful,
                           warmup=min(30, cfg.sl_steps // 10), eval_every=max(1, cfg.sl_steps // 6),
                           max_seconds=max(5, int(0.5 * (cfg.max_seconds - (time.perf_counter() - t_start)))),
                           seed=cfg.seed)
    _say(job, f"SL-CAI: tuning on {len(revised)} revisions and {len(sl_rows)} helpful rows")
    sl_phase = _Phase(job, "sl-cai", 0)
    sl_model, sl_tok = sft.run(sl_cfg, sl_phase, revised + sl_rows, save=False)
    last = next((r for r in reversed(sl_phase.records) if "eval_accuracy" in r), {})
    sl_path = runs.save_run(sl_model, sl_tok, "sft", {**sl_cfg.to_dict(), "cai": cfg.to_dict()}, sl_phase.records,
                            {"revisions": len(revised), "helpful_rows": len(sl_rows), **last},
                            name=f"sl-cai-{cfg.key()[:6]}", parent=start.name, owner=owner)
    info["sl_run"] = sl_path.name
    _say(job, "measuring the SL-CAI model")
    info["points"].append(measure("after SL-CAI", sl_model, sl_tok, eval_red, eval_help, judge, scored))
    if job.should_stop():
        return str(sl_path)

    _say(job, "RLAIF: the AI feedback model labels pairs of answers")
    pair_prompts = [p for p in red if p.split == "train"] + [p for p in helpful if p.split == "train"][::40]
    ai_pairs, human_pairs, stats, shown = label_pairs(sl_model, sl_tok, judge, scored, pair_prompts, cfg.n_pairs,
                                                     cfg.seed, cfg.human_noise, job.should_stop)
    info["labels"], info["pairs"] = stats, shown
    if job.should_stop():
        return str(sl_path)
    gold = _gold(red + helpful)
    outcomes = {}
    for name, pairs, phase in [("RLAIF", ai_pairs, "rlaif")] + ([("RLHF", human_pairs, "rlhf")] if cfg.compare_human else []):
        left = cfg.max_seconds - (time.perf_counter() - t_start)
        # DPO: at most EPOCHS passes over the pairs. Few labels (the tuned model mostly answers alike)
        # would otherwise be seen dozens of times, and the policy would learn their accidents.
        steps = cfg.dpo_steps if cfg.method == "ppo" else \
            min(cfg.dpo_steps, max(1, math.ceil(EPOCHS * 0.8 * len(pairs) / 32)))
        rl_cfg = rlhf.RLHFConfig(parent=sl_path.name, method=cfg.method, steps=steps, lr=cfg.dpo_lr,
                                 beta=cfg.beta, eval_every=max(1, steps // 4), seed=cfg.seed,
                                 max_seconds=max(5, int(left / (2 if cfg.compare_human and name == "RLAIF" else 1) - 8)))
        _say(job, f"{name}: {cfg.method.upper()} on {len(pairs)} {'AI' if name == 'RLAIF' else 'simulated human'} labels")
        reporter = _Phase(job, phase, cfg.sl_steps)
        stage = "cai" if name == "RLAIF" else "rlhf"   # the run tree tells AI feedback from human labels
        if cfg.method == "dpo":
            path = rlhf.train_dpo(rl_cfg, reporter, pairs, parent=sl_path.name, owner=owner, gold=gold, stage=stage)
        else:
            rm = rlhf.train_reward_model(rl_cfg, _Phase(job, f"{phase}-reward", cfg.sl_steps), pairs,
                                         parent=sl_path.name, owner=owner, gold=gold)
            path = rlhf.train_ppo(rl_cfg, reporter, rm, [p.text for p in pair_prompts], parent=sl_path.name,
                                  owner=owner, gold=gold, stage=stage)
        with GLOBAL_RNG:
            tuned, tuned_tok, _ = runs.load_run(path)
        _say(job, f"measuring the {name} model")
        point = measure(f"after {name}", tuned, tuned_tok, eval_red, eval_help, judge, scored)
        info["points"].append(point)
        outcomes[name] = {"run": os.path.basename(path), "pairs": len(pairs), **{k: v for k, v in point.items()
                                                                                 if k != "rows"}}
        if job.should_stop():
            break
    info["outcomes"] = outcomes
    info["seconds"] = round(time.perf_counter() - t_start, 1)
    _say(job, "done")
    return str(runs.find_run(outcomes["RLAIF"]["run"]))


def _gold(prompts: list[C.Prompt]):
    """The truth as a reward for DPO's held-out curve: minus the rules an answer breaks."""
    by_text = {p.text: p for p in prompts}
    return lambda prompt, answer: -float(len(C.violations(by_text[prompt], answer))) if prompt in by_text else 0.0
