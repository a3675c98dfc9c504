"""RLAIF's data: pairs of sampled answers labelled by the AI judge against the constitution (Bai et
al. 2022, section 4), and the same pairs labelled by a simulated human, to compare."""
from __future__ import annotations

import random
import time

from engine.cai import constitution as C
from engine.cai import judge as J
from engine.cai.generation import generate
from engine.rlhf import preferences as P

PER_PROMPT = 8   # answers sampled per prompt: four pairs
PASSES = 3       # times round the prompts at most
EPOCHS = 3       # passes over the pairs at most (transformers' TrainingArguments default, num_train_epochs=3)
ROUND = 8        # prompts sampled together


def label_pairs(model, tok, judge: J.Judge, principles: list[C.Principle], prompts: list[C.Prompt], n_pairs: int,
                seed: int, noise: float, stop=lambda: False, progress=lambda fraction: None) -> tuple[list[P.Pair], list[P.Pair], dict, list[dict]]:
    """Two sampled answers at a time, each labelled twice by one rule, the answer that breaks fewer
    principles wins, ties are not kept: by the AI judge (its verdicts, P > 0.5) and, to compare, by a
    simulated human who knows the truth but gets `noise` of the pairs the wrong way round.
    A helpful prompt's second answer is a dodge ("I don't know."): the model seldom dodges a task by
    itself, and without such pairs the preferences hold only harmlessness, which pushes toward evasion
    (measured: helpful accuracy fell by 10 to 23 points). Bai et al. kept helpfulness in their RL stage
    with human comparisons; here the judge labels these pairs like the others.
    Such pairs are always labelled and red-team pairs seldom (the tuned model mostly answers alike), so
    they are capped at a third of the AI's pairs. Goes round the prompts PASSES times, or until the
    judge has labelled `n_pairs`. `progress(fraction)` is told how far it has got after each round
    (labels kept against `n_pairs`, or rounds against the most it may take, whichever is further).
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
        progress(max(len(ai) / max(1, n_pairs), r / max(1, len(order))))
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


