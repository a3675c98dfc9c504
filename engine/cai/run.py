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

from engine import sft
from engine.cai import constitution as C
from engine.cai import judge as J
from engine.cai.config import CAIConfig
from engine.cai.critique import critique_and_revise
from engine.cai.feedback import EPOCHS, label_pairs
from engine.cai.measure import eval_prompts, measure
from engine.core import runs
from engine.core.config import UserError
from engine.core.report import Reporter, Segment, StageResult
from engine.rlhf.config import RLHFConfig
from engine.rlhf.dpo import fit_dpo
from engine.rlhf.policy import save_policy
from engine.rlhf.ppo import fit_ppo
from engine.rlhf.reward_model import fit_reward_model, save_reward_model
from engine.text import instructions


class _Story:
    """What the page shows of the run as it goes: the phase it is in (as step k of the run's
    phases, so a bar moves from the first second) and how long each took (info["timings"],
    seconds), and the measured points, each set on the reporter whole."""

    def __init__(self, reporter: Reporter, phases: int):
        self.reporter, self.points, self.timings, self.phases = reporter, [], {}, phases
        self.phase, self.since, self.done = "", time.perf_counter(), 0

    def enter(self, phase: str) -> None:
        now = time.perf_counter()
        if self.phase:
            self.timings[self.phase] = round(self.timings.get(self.phase, 0.0) + now - self.since, 1)
            self.done += 1
        self.phase, self.since = phase, now
        self.reporter.say("" if phase == "done" else phase)
        self.reporter.prepare(phase, self.done, self.phases)
        self.reporter.set_info(phase=phase, timings=dict(self.timings))

    def point(self, p: dict) -> None:
        self.points.append(p)
        self.reporter.set_info(points=list(self.points))


def run(cfg: CAIConfig, reporter: Reporter, owner: str | None = None) -> StageResult:
    """The whole stage on the helpful-only model `cfg.start`: train the judge, measure, critique and
    revise, SL-CAI (sft.fit on the revisions), measure, AI-labelled pairs, DPO or PPO (engine.rlhf),
    measure; optionally the same optimisation on simulated human labels. Everything the page shows
    goes into the reporter's info; records carry "phase" ("sl-cai", "rlaif", "rlhf"). The result is
    the final run (stage "cai", parent the SL-CAI run, whose parent is the start)."""
    t_start = time.perf_counter()
    principles = cfg.principles()
    # the judge, measuring, critique, SL-CAI, measuring, labels, then a policy and a measurement each
    story = _Story(reporter, phases=6 + 2 * (1 + cfg.compare_human))
    notices: list[str] = []
    reporter.set_info(constitution=[dataclasses.asdict(p) for p in principles], notices=notices, points=[])
    start = runs.find_run(cfg.start, "sft")
    model, tok, start_info = runs.load_run(start)
    # The prompts exactly as the start model's data drew them, so no held-out prompt was trained on.
    data_seed, n_train = start_info.config.get("seed", 0), start_info.config.get("n_train", 1000)
    red = C.red_team(data_seed)
    rows = instructions.build(data_seed, n_train)
    helpful = C.helpful(rows)

    story.enter("training the AI feedback model")
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
    story.enter("measuring the helpful-only model")
    story.point(measure("helpful-only (start)", model, tok, eval_red, eval_help, judge, scored))

    story.enter("SL-CAI: critiquing and revising red-team answers")
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
    story.enter(f"SL-CAI: tuning on {len(revised)} revisions and {len(sl_rows)} helpful rows")
    sl_part = Segment(reporter, tags={"phase": "sl-cai"})
    sl = sft.fit(sl_cfg, sl_part, revised + sl_rows)
    sl_result = sl.save("sft", {**sl_cfg.to_dict(), "cai": cfg.to_dict()}, name=f"sl-cai-{cfg.key()[:6]}",
                        parent=start.name, owner=owner, revisions=len(revised), helpful_rows=len(sl_rows))
    sl_name = runs.Path(sl_result.run).name
    reporter.set_info(sl_run=sl_name)
    story.enter("measuring the SL-CAI model")
    story.point(measure("after SL-CAI", sl.model, sl.tokenizer, eval_red, eval_help, judge, scored))
    if reporter.should_stop():
        return StageResult(sl_result.run, sl_result.summary, "stopped")

    story.enter("RLAIF: the AI feedback model labels pairs of answers")
    pair_prompts = [p for p in red if p.split == "train"] + [p for p in helpful if p.split == "train"][::40]
    ai_pairs, human_pairs, stats, shown = label_pairs(sl.model, sl.tokenizer, judge, scored, pair_prompts, cfg.n_pairs,
                                                     cfg.seed, cfg.human_noise, reporter.should_stop)
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
        rl_cfg = RLHFConfig(parent=sl_name, method=cfg.method, steps=steps, lr=cfg.dpo_lr, beta=cfg.beta,
                            eval_every=max(1, steps // 4), seed=cfg.seed,
                            max_seconds=max(5, int(left / (2 if cfg.compare_human and name == "RLAIF" else 1) - 8)))
        story.enter(f"{name}: {cfg.method.upper()} on {len(pairs)} {'AI' if name == 'RLAIF' else 'simulated human'} labels")
        part = Segment(reporter, tags={"phase": phase}, step0=cfg.sl_steps)
        if cfg.method == "dpo":
            tuned = fit_dpo(rl_cfg, part, pairs, parent=sl_name, gold=gold)
        else:
            rm = fit_reward_model(rl_cfg, Segment(reporter, tags={"phase": f"{phase}-reward"}, step0=cfg.sl_steps),
                                  pairs, parent=sl_name, gold=gold)
            rm_run = save_reward_model(rm, rl_cfg, pairs, owner).run
            tuned = fit_ppo(rl_cfg, part, rm_run, [p.text for p in pair_prompts], parent=sl_name, gold=gold)
        # The run tree tells AI feedback from human labels by the stage.
        final_one = save_policy(tuned, rl_cfg, stage="cai" if name == "RLAIF" else "rlhf", owner=owner)
        story.enter(f"measuring the {name} model")
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
    return StageResult(final.run, summary, "stopped" if reporter.should_stop() else "done", final.message)


def _gold(prompts: list[C.Prompt]):
    """The truth as a reward for DPO's held-out curve: minus the rules an answer breaks."""
    by_text = {p.text: p for p in prompts}
    return lambda prompt, answer: -float(len(C.violations(by_text[prompt], answer))) if prompt in by_text else 0.0
