"""Instruction data for SFT: task families built from the same world as the base corpus, and
JSONL in the formats TRL's SFTTrainer reads (prompt/completion, or messages)."""
from __future__ import annotations

import dataclasses
import random

from engine.core.config import UserError
from engine.core.textio import json_lines, said
from engine.text.world import COLORS, FEELINGS, FOODS, OBJECTS, PETS, World

FAMILIES = ("facts", "copy", "reverse", "uppercase", "label", "pattern")


@dataclasses.dataclass
class Example:
    family: str
    prompt: str
    completion: str
    split: str = "train"   # "train" or "test" (held out)

    def messages(self) -> list[dict]:
        return [{"role": "user", "content": self.prompt}, {"role": "assistant", "content": self.completion}]


# Paraphrases of each question: more to train on, and the held-out split stays fair because it
# is made by fact (person and relation), never by wording.
QUESTIONS = {"place": ("Where does {n} live?", "Where is the home of {n}?", "Where can I find {n}?"),
             "job": ("What is the job of {n}?", "What does {n} do for work?", "What work does {n} do?"),
             "pet": ("What pet does {n} have?", "Which animal does {n} keep?", "What is the pet of {n}?"),
             "food": ("What does {n} like?", "What food does {n} like?", "What does {n} like to eat?"),
             "friend": ("Who is the friend of {n}?", "Who is a friend of {n}?", "Name a friend of {n}.")}


def _facts(w: World) -> list[list[tuple[str, str]]]:
    """Questions about facts the base model read during pretraining, answered with the corpus's own
    sentence ("Where does Mia live?" -> "Mia lives on the hill."). Restating the subject lets the
    answer start the way the pretraining text did, so the base's stored knowledge finishes it: SFT
    teaches the format, not the facts (LIMA's "superficial alignment", Zhou et al. 2023). A
    question the answer cannot be built from is ruled out: a held-out fact must be in the corpus.
    One group per fact, holding its paraphrases."""
    groups = []
    for p in w.people:
        answers = {"place": f"{p.name} lives {p.place}.", "job": f"{p.name} is a {p.job}.",
                   "pet": f"{p.name} has a {p.pet}.", "food": f"{p.name} likes {p.food}.",
                   "friend": f"{p.name} is a friend of {p.friend}."}
        assert set(answers.values()) <= set(w.facts(p))   # the exact sentences the corpus states
        groups += [[(q.format(n=p.name), answers[rel]) for q in qs] for rel, qs in QUESTIONS.items()]
    return groups


def _words(w: World) -> list[str]:
    return [p.name for p in w.people] + COLORS + OBJECTS + PETS + FOODS


def _phrase(rng: random.Random, w: World, max_chars: int = 14) -> str:
    """Two or three words of the world's vocabulary, short enough that prompt and answer fit a
    64-token context together."""
    while True:
        ph = " ".join(rng.sample(_words(w), rng.choice([2, 3])))
        if len(ph) <= max_chars:
            return ph


def _label(rng: random.Random, w: World) -> tuple[str, str]:
    """Topic of a sentence: the label follows from one word the corpus uses in telling contexts
    ("has a cat", "likes soup", "a red kite"). Held out are sentences, not words: a new name,
    template or word pairing, as in a text-classification test set."""
    n, label = rng.choice(w.people).name, rng.choice(["pet", "food", "color"])
    pet, food, color, thing = rng.choice(PETS), rng.choice(FOODS), rng.choice(COLORS), rng.choice(OBJECTS)
    sentence = rng.choice({
        "pet": [f"{n} has a {pet}.", f"The {pet} was {rng.choice(FEELINGS)}.", f"{n} saw the {pet}."],
        "food": [f"{n} likes {food}.", f"{n} bought some {food}.", f"{n} saw the {food}."],
        "color": [f"{n} has a {color} {thing}.", f"The {thing} is {color}.", f"{n} saw the {color} {thing}."],
    }[label])
    return f"Pet, food or color? {sentence}", label


def _pattern(rng: random.Random) -> tuple[str, str]:
    """The next word of a repeating sequence, shown at least twice over: an induction head's job
    (Olsson et al. 2022). Short words keep it inside the context."""
    period = rng.choice([2, 3])
    items = rng.sample([x for x in COLORS + OBJECTS + PETS if len(x) <= 4], period)
    seq = [items[i % period] for i in range(rng.randint(2 * period, 3 * period - 1) + 1)]
    return f"Continue: {' '.join(seq[:-1])}", seq[-1]


def _sample(fam: str, rng: random.Random, w: World) -> tuple[str, str]:
    if fam == "pattern":
        return _pattern(rng)
    if fam == "label":
        return _label(rng, w)
    ph = _phrase(rng, w)
    return {"copy": (f"Repeat: {ph}", ph),
            "reverse": (f"Reverse: {ph}", " ".join(reversed(ph.split()))),
            "uppercase": (f"Uppercase: {ph}", ph.upper())}[fam]


def build(seed: int = 0, per_family: int = 200, held_out: int = 40, families=FAMILIES) -> list[Example]:
    """Train and held-out examples for each family; no held-out prompt is a training prompt.
    Facts are finite (the world is small): their held-out questions ask about facts that no
    training question asked about, in any wording."""
    w = World()   # the world of the built-in corpus, which the base read; the seed only draws the data
    rng = random.Random(seed + 1)
    out: list[Example] = []
    for fam in families:
        if fam == "facts":
            groups = _facts(w)
            rng.shuffle(groups)
            n_test = len(groups) // 4
            test = [q for g in groups[:n_test] for q in g]
            train = [q for g in groups[n_test:] for q in g][:per_family]
        else:
            seen, pairs = set(), []
            for _ in range(50 * (per_family + held_out)):   # some spaces are finite: stop trying
                if len(pairs) == per_family + held_out:
                    break
                q, a = _sample(fam, rng, w)
                if q not in seen:
                    seen.add(q)
                    pairs.append((q, a))
            test, train = pairs[:held_out], pairs[held_out:]
        out += [Example(fam, q, a, "test") for q, a in test]
        out += [Example(fam, q, a, "train") for q, a in train]
    return out


def parse_jsonl(data: bytes, family: str = "upload") -> tuple[list[Example], list[str]]:
    """Rows in the formats TRL's SFTTrainer reads: {"prompt", "completion"} as strings or as
    message lists, or {"messages": [...]}. Optional "family" and "split" keys; without a split,
    every fifth row is held out. Bad lines are reported by number and skipped; the rest are used."""
    rows, problems = [], []
    for i, d in json_lines(data):
        try:
            if "messages" in d:
                user, bot = said(d["messages"], "user"), said(d["messages"], "assistant")
            else:
                user, bot = said(d["prompt"], "user"), said(d["completion"], "assistant")
            split = d.get("split") or ("test" if len(rows) % 5 == 4 else "train")
            ex = Example(str(d.get("family") or family), user, bot, split)
        except (KeyError, TypeError, StopIteration, AttributeError):   # d is None: not a JSON object
            problems.append(f"line {i}: not a JSON object with prompt/completion or user/assistant messages")
            continue
        if problem := check(ex):
            problems.append(f"line {i}: {problem}")
        else:
            rows.append(ex)
    if not rows:
        raise UserError("No usable rows: " + ("; ".join(problems[:5]) or "the file is empty."))
    return rows, problems




def from_rows(records: list[dict]) -> tuple[list[Example], list[str]]:
    """Examples from table rows (the page's editor); rows that cannot be used are reported."""
    out, problems = [], []
    for i, r in enumerate(records, 1):
        ex = Example(*(_text(r.get(k)) for k in ("family", "prompt", "completion", "split")))
        ex.family = ex.family or "custom"
        if problem := check(ex):
            problems.append(f"row {i}: {problem}")
        else:
            out.append(ex)
    return out, problems


def _text(v) -> str:
    return "" if v is None or v != v else str(v)   # v != v: a blank cell comes back as NaN


def check(ex: Example) -> str | None:
    if not ex.prompt.strip():
        return "the prompt is empty"
    if not ex.completion.strip():
        return "the answer is empty"
    if ex.split not in ("train", "test"):
        return f"split must be train or test, not {ex.split!r}"
    return None
