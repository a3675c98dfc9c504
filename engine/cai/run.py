"""Constitutional AI at toy scale (Bai et al. 2022, "Constitutional AI: Harmlessness from AI
Feedback", arXiv:2212.08073): supervised critique-and-revision (SL-CAI), then reinforcement
learning from AI feedback (RLAIF). The SFT loop and the RLHF page's DPO or PPO do the training;
what is new is where the feedback comes from: a judge that reads written principles (engine.cai.judge).
"""
from __future__ import annotations

import dataclasses
import math
import random
import time

from engine import demos, sft
from engine.cai import constitution as C
from engine.cai import judge as J
from engine.cai.config import CAIConfig
from engine.cai.critique import critique_and_revise
from engine.cai.feedback import EPOCHS, label_pairs
from engine.cai.measure import eval_prompts, measure
from engine.core import limits, runs
from engine.core.config import UserError
from engine.core.report import Recorder, Reporter, Segment, StageResult
from engine.rlhf.config import RLHFConfig
from engine.rlhf.dpo import fit_dpo
from engine.rlhf.policy import save_policy
from engine.rlhf.ppo import fit_ppo
from engine.rlhf.reward_model import fit_reward_model, save_reward_model
from engine.text import instructions

# The run's phases, in order: (key, what the page lists). Their weights (`_weights`) are about each
# phase's share of the run's time on this machine, so one bar spans the run and its estimate holds.
PHASES = [("judge", "train the AI feedback model"), ("measure-start", "measure the helpful-only model"),
          ("critique", "critique and revise red-team answers"), ("sl", "SL-CAI: tune on the revisions"),
          ("measure-sl", "measure the SL-CAI model"), ("label", "the AI feedback model labels pairs"),
          ("rlaif", "RLAIF: optimise on the AI labels"), ("measure-rlaif", "measure the RLAIF model"),
          ("rlhf", "RLHF: optimise on simulated human labels"), ("measure-rlhf", "measure the RLHF model")]


def _weights(cfg: CAIConfig) -> dict[str, float]:
    """Each phase's expected seconds, in proportion: CPU seconds of the quick demo (seed 0, one thread,
    2026-12-03): the judge and its validation check 4.5 (mostly MiniLM embeddings, the first run in a
    process), each measurement 0.5, critique and revision 0.9 per sample per prompt, SL-CAI 0.067 per
    step, labelling 0.15 per AI label (at most three passes over the prompts, about 15), DPO 1.5 (a few
    steps: at most three passes over the labels); PPO's reward model and steps after it, more."""
    policy = 1.0 + 0.05 * min(cfg.dpo_steps, 10) if cfg.method == "dpo" else 5.0 + 0.3 * cfg.dpo_steps
    w = {"judge": 1.3 + 0.2 * cfg.judge_examples, "measure-start": 0.6, "critique": 0.9 * cfg.n_samples,
         "sl": 0.067 * cfg.sl_steps, "measure-sl": 0.6, "label": min(0.15 * cfg.n_pairs, 15.0), "rlaif": policy,
         "measure-rlaif": 0.5}
    if cfg.compare_human:
        w.update({"rlhf": policy, "measure-rlhf": 0.5})
    return w


class _Story:
    """What the page shows of the run as it goes: one bar over the planned phases, weighted by their
    expected share of the time (reporter.prepare, as a percentage, so the page's estimate holds from
    the first second), the phase it is in (info["phase"], with its details), how long each took
    (info["timings"], seconds, by the phase's name in info["plan"]), and the measured points, each
    set on the reporter whole."""

    def __init__(self, reporter: Reporter, cfg: CAIConfig):
        self.reporter, self.points, self.timings = reporter, [], {}
        self.weights = _weights(cfg)
        self.names = {k: name for k, name in PHASES if k in self.weights}
        self.total = sum(self.weights.values())
        self.key, self.what, self.before, self.since = "", "", 0.0, time.perf_counter()
        reporter.set_info(plan=list(self.names.values()), timings={})

    def enter(self, key: str, what: str = "") -> None:
        """Start phase `key` (PHASES); "done" ends the last one."""
        now = time.perf_counter()
        if self.key:
            name = self.names[self.key]
            self.timings[name] = round(self.timings.get(name, 0.0) + now - self.since, 1)
            self.before += self.weights[self.key]
        self.key, self.since = ("", now) if key == "done" else (key, now)
        self.what = "" if key == "done" else (what or self.names[key])
        self.reporter.say(self.what)
        self.reporter.set_info(phase=self.what, timings=dict(self.timings))
        self.within(0.0)

    def within(self, fraction: float) -> None:
        """How far the current phase has got (0 to 1)."""
        done = self.before + (self.weights[self.key] * min(1.0, max(0.0, fraction)) if self.key else 0.0)
        k = list(self.names).index(self.key) + 1 if self.key else len(self.names)
        self.reporter.prepare(f"{self.what} (phase {k} of {len(self.names)}; percent of the run done)",
                              round(100 * done / self.total, 1), 100)

    def point(self, p: dict) -> None:
        self.points.append(p)
        self.reporter.set_info(points=list(self.points))


class _Part(Segment):
    """A training part of the run (SL-CAI, the policy): its steps move the run's one bar, and its own
    preparation (formatting rows) is part of the phase, not a bar of its own."""

    def __init__(self, reporter: Reporter, story: _Story, steps: int, span: tuple[float, float] = (0.0, 1.0), **kw):
        super().__init__(reporter, **kw)
        self.story, self.planned, self.span = story, max(1, steps), span

    def emit(self, record: dict) -> None:
        super().emit(record)
        if "loss" in record and "step" in record:
            lo, hi = self.span
            self.story.within(lo + (hi - lo) * min(1.0, record["step"] / self.planned))

    def prepare(self, what: str, done: float, total: float) -> None:
        Recorder.prepare(self, what, done, total)


def run(cfg: CAIConfig, reporter: Reporter, owner: str | None = None) -> StageResult:
    """The whole stage on the helpful-only model `cfg.start`: train the judge, measure, critique and
    revise, SL-CAI (sft.fit on the revisions), measure, AI-labelled pairs, DPO or PPO (engine.rlhf),
    measure; optionally the same optimisation on simulated human labels. Everything the page shows
    goes into the reporter's info; records carry "phase" ("sl-cai", "rlaif", "rlhf"). The result is
    the final run (stage "cai", parent the SL-CAI run, whose parent is the start)."""
    t_start = time.perf_counter()
    principles = cfg.principles()
    story = _Story(reporter, cfg)
    story.enter("judge")   # the bar shows from the first second, while the start model loads
    notices: list[str] = []
    reporter.set_info(constitution=[dataclasses.asdict(p) for p in principles], notices=notices, points=[])
    start = runs.find_run(cfg.start, "sft")
    model, tok, start_info = runs.load_run(start)
    reporter.set_info(uniform_loss=round(math.log(len(tok)), 2))   # ln V: a uniform guess, the SL-CAI loss's anchor
    # The prompts exactly as the start model's data drew them, so no held-out prompt was trained on.
    data_seed, n_train = start_info.config.get("seed", 0), start_info.config.get("n_train", 1000)
    red = C.red_team(data_seed)
    rows = instructions.build(data_seed, n_train)
    helpful = C.helpful(rows)

    rng = random.Random(cfg.seed)
    train_prompts = [p for p in red + helpful if p.split == "train"]
    examples = J.choose_examples(J.labelled_pool(train_prompts, rng), cfg.judge_examples, rng)
    judge = J.train_judge(examples, cfg.seed)
    story.within(0.5)
    scored, matched = [], {}
    for pr in principles:
        key, sim = judge.match(pr.text)
        matched[pr.name] = {"means": C.KNOWN[key][0], "similarity": round(sim, 2), "scored": sim >= J.MIN_SIMILARITY}
        if sim >= J.MIN_SIMILARITY:
            scored.append(pr)
    left_out = [n for n, m in matched.items() if not m["scored"]]
    if left_out:
        notices.append(f"The AI feedback model cannot score {', '.join(repr(n) for n in left_out)}: its "
                       "meaning is far from every principle the judge learned from (cosine similarity below "
                       f"{J.MIN_SIMILARITY}), so it is left out of the critiques and the labels.")
        reporter.set_info(notices=list(notices))
    if not scored:
        raise UserError("The AI feedback model can score none of these principles: keep at least one close to a "
                        "default (insults, the secret, inventing facts, dodging questions), or restore the defaults.")
    held = J.labelled_pool([p for p in red + helpful if p.split == "test"], random.Random(cfg.seed + 1))
    ag = J.agreement(judge, scored, held)
    reporter.set_info(judge={**ag, "errors": ag["errors"][:40], "n_errors": len(ag["errors"]),
                             "examples": len(examples), "matched": matched})

    eval_red, eval_help = eval_prompts(red, helpful)
    story.enter("measure-start")
    story.point(measure("helpful-only (start)", model, tok, eval_red, eval_help, judge, scored))

    story.enter("critique", f"critique and revise {sum(p.split == 'train' for p in red)} red-team answers")
    trace = critique_and_revise(model, tok, judge, scored, [p for p in red if p.split == "train"], cfg.n_samples,
                                cfg.seed)
    reporter.set_info(trace=trace)
    if reporter.should_stop():
        return StageResult(status="stopped")
    revised = [instructions.Example(r["kind"], r["prompt"], r["revision"]) for r in trace if r["revision"]]
    sl_rows = sft.first_rows(rows, cfg.sl_helpful)
    sl_cfg = sft.SFTConfig(base=start.name, steps=cfg.sl_steps, lr=cfg.sl_lr, n_train=cfg.sl_helpful,
                           warmup=min(30, cfg.sl_steps // 10), eval_every=max(1, cfg.sl_steps // 6),
                           max_seconds=max(5, int(0.5 * (cfg.max_seconds - (time.perf_counter() - t_start)))),
                           seed=cfg.seed)
    story.enter("sl", f"SL-CAI: tune on {len(revised)} revisions and {len(sl_rows):,} helpful rows")
    sl_part = _Part(reporter, story, cfg.sl_steps, tags={"phase": "sl-cai"})
    sl = sft.fit(sl_cfg, sl_part, revised + sl_rows)
    sl_result = sl.save("sft", {**sl_cfg.to_dict(), "cai": cfg.to_dict()}, name=f"sl-cai-{cfg.key()[:6]}",
                        parent=start.name, owner=owner, revisions=len(revised), helpful_rows=len(sl_rows))
    sl_name = runs.Path(sl_result.run).name
    reporter.set_info(sl_run=sl_name)
    story.enter("measure-sl")
    story.point(measure("after SL-CAI", sl.model, sl.tokenizer, eval_red, eval_help, judge, scored))
    if reporter.should_stop():
        return StageResult(sl_result.run, sl_result.summary, "stopped")

    story.enter("label", f"the AI feedback model labels pairs of answers, up to {cfg.n_pairs}")
    pair_prompts = [p for p in red if p.split == "train"] + [p for p in helpful if p.split == "train"][::40]
    ai_pairs, human_pairs, stats, shown = label_pairs(sl.model, sl.tokenizer, judge, scored, pair_prompts, cfg.n_pairs,
                                                     cfg.seed, cfg.human_noise, reporter.should_stop, story.within)
    reporter.set_info(labels=stats, pairs=shown)
    if reporter.should_stop():
        return StageResult(sl_result.run, sl_result.summary, "stopped")
    gold = _gold(red + helpful)
    outcomes, final = {}, None
    for name, pairs, phase in [("RLAIF", ai_pairs, "rlaif")] + ([("RLHF", human_pairs, "rlhf")] if cfg.compare_human else []):
        left = cfg.max_seconds - (time.perf_counter() - t_start)
        # DPO: at most EPOCHS passes over the pairs. Few labels (the tuned model mostly answers alike)
        # would otherwise be seen dozens of times, and the policy would learn their accidents.
        steps = cfg.dpo_steps if cfg.method == "ppo" else \
            min(cfg.dpo_steps, max(1, math.ceil(EPOCHS * 0.8 * len(pairs) / 32)))
        # Pinned, not the RLHF page's defaults, which may change: what the measurements were made with.
        rl_cfg = RLHFConfig(parent=sl_name, method=cfg.method, steps=steps, lr=cfg.dpo_lr, beta=cfg.beta,
                            eval_every=max(1, steps // 4), seed=cfg.seed, batch_size=32, rm_steps=150, rm_lr=1e-3,
                            kl_coef=0.05, bf16=True,
                            max_seconds=max(5, int(left / (2 if cfg.compare_human and name == "RLAIF" else 1) - 8)))
        story.enter(phase, f"{name}: {cfg.method.upper()} on {len(pairs)} "
                           f"{'AI' if name == 'RLAIF' else 'simulated human'} labels")
        part = _Part(reporter, story, steps, (0.0, 1.0) if cfg.method == "dpo" else (0.4, 1.0), tags={"phase": phase},
                     step0=cfg.sl_steps)
        if cfg.method == "dpo":
            tuned = fit_dpo(rl_cfg, part, pairs, parent=sl_name, gold=gold)
        else:
            rm = fit_reward_model(rl_cfg, _Part(reporter, story, rl_cfg.rm_steps, (0.0, 0.4),
                                                tags={"phase": f"{phase}-reward"}, step0=cfg.sl_steps),
                                  pairs, parent=sl_name, gold=gold)
            rm_run = save_reward_model(rm, rl_cfg, pairs, owner).run
            tuned = fit_ppo(rl_cfg, part, rm_run, [p.text for p in pair_prompts], parent=sl_name, gold=gold)
        # The run tree tells AI feedback from human labels by the stage.
        final_one = save_policy(tuned, rl_cfg, stage="cai" if name == "RLAIF" else "rlhf", owner=owner)
        story.enter(f"measure-{phase}")
        point = measure(f"after {name}", tuned.model, tuned.tokenizer, eval_red, eval_help, judge, scored)
        story.point(point)
        outcomes[name] = {"run": runs.Path(final_one.run).name, "pairs": len(pairs),
                          **{k: v for k, v in point.items() if k != "rows"}}
        final = final if name == "RLHF" else final_one
        if reporter.should_stop():
            break
    story.enter("done")
    reporter.set_info(outcomes=outcomes, seconds=round(time.perf_counter() - t_start, 1))
    summary = {**final.summary, **{f"{k}/{p['point']}": p[k] for p in story.points
                                   for k in ("violation_rate", "helpful_accuracy", "evasive_rate")}}
    told = " → ".join(f"{p['violation_rate']:.0%} ({p['point'].removeprefix('after ').split(' (')[0]})"
                       for p in story.points)
    return StageResult(final.run, summary, "stopped" if reporter.should_stop() else "done",
                       f"Violations on validation red-team prompts: {told}.")


def _gold(prompts: list[C.Prompt]):
    """The truth as a reward for DPO's held-out curve: minus the rules an answer breaks."""
    by_text = {p.text: p for p in prompts}
    return lambda prompt, answer: -float(len(C.violations(by_text[prompt], answer))) if prompt in by_text else 0.0


# The page's payoff before anyone trains: the quick demo's before/after bars, its SL-CAI curve and
# its trace, recorded by `python -m engine demo cai-quick-demo`. Bounded by steps, not time (the
# time limit is the job's largest, so a busy machine records the same run).
DEMO = "cai-quick-demo"
demos.register(DEMO, run, CAIConfig(max_seconds=int(limits.MAX_JOB_SECONDS)),
               keep=("points", "trace", "judge", "labels", "outcomes", "pairs", "constitution", "plan", "timings",
                     "seconds", "notices", "uniform_loss"))
