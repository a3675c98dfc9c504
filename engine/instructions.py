"""Instruction data for SFT: task families built from the same world as the base corpus, and
JSONL in the formats TRL's SFTTrainer reads (prompt/completion, or messages)."""
from __future__ import annotations

import dataclasses
import json
import random

from .config import UserError
from .world import COLORS, FOODS, OBJECTS, PETS, World

FAMILIES = ("facts", "copy", "reverse", "uppercase", "label", "pattern")


@dataclasses.dataclass
class Example:
    family: str
    prompt: str
    completion: str
    split: str = "train"   # "train" or "test" (held out)

    def messages(self) -> list[dict]:
        return [{"role": "user", "content": self.prompt}, {"role": "assistant", "content": self.completion}]


def _facts(w: World) -> list[tuple[str, str]]:
    """Questions whose answers the base model read during pretraining ("Mia lives on the hill.")."""
    out = []
    for p in w.people:
        out += [(f"Where does {p.name} live?", p.place), (f"What pet does {p.name} have?", f"a {p.pet}"),
                (f"What does {p.name} like?", p.food), (f"What is the job of {p.name}?", f"a {p.job}"),
                (f"Who is the friend of {p.name}?", p.friend)]
    return out


def _phrase(rng: random.Random, w: World) -> str:
    p = rng.choice(w.people)
    return rng.choice([f"{rng.choice(COLORS)} {rng.choice(OBJECTS)}", f"{p.name} likes {rng.choice(FOODS)}",
                       f"the {rng.choice(PETS)} is {rng.choice(COLORS)}", f"{p.name} has a {rng.choice(OBJECTS)}",
                       f"a {rng.choice(COLORS)} {rng.choice(PETS)}"])


def _label(word: str) -> str:
    return "a pet" if word in PETS else "a food" if word in FOODS else "a color"


def _pattern(rng: random.Random) -> tuple[str, str]:
    period = rng.choice([2, 3])
    items = rng.sample(COLORS + OBJECTS, period)
    n = rng.randint(period + 1, 2 * period)
    seq = [items[i % period] for i in range(n + 1)]
    return f"Continue: {' '.join(seq[:-1])}", seq[-1]


def build(seed: int = 0, per_family: int = 200, held_out: int = 40, families=FAMILIES) -> list[Example]:
    """Train and held-out examples for each family. Facts and labels are finite (the world is
    small), so their held-out questions are about facts or words no training example asked about."""
    w = World(seed)
    rng = random.Random(seed + 1)
    out: list[Example] = []
    for fam in families:
        if fam == "facts":
            pairs = _facts(w)
            rng.shuffle(pairs)
        elif fam == "label":
            words = PETS + FOODS + COLORS
            pairs = [(f"Is {x} a pet, a food or a color?", _label(x)) for x in words]
            rng.shuffle(pairs)
        else:
            seen, pairs = set(), []
            for _ in range(50 * (per_family + held_out)):   # the phrase space is finite: stop trying
                if len(pairs) == per_family + held_out:
                    break
                if fam == "pattern":
                    q, a = _pattern(rng)
                else:
                    ph = _phrase(rng, w)
                    q, a = {"copy": (f"Repeat: {ph}", ph),
                            "reverse": (f"Reverse the words: {ph}", " ".join(reversed(ph.split()))),
                            "uppercase": (f"Uppercase: {ph}", ph.upper())}[fam]
                if q not in seen:
                    seen.add(q)
                    pairs.append((q, a))
        n_test = min(held_out, max(1, len(pairs) // 4))
        out += [Example(fam, q, a, "test") for q, a in pairs[:n_test]]
        out += [Example(fam, q, a, "train") for q, a in pairs[n_test:n_test + per_family]]
    return out


def parse_jsonl(data: bytes, family: str = "upload") -> tuple[list[Example], list[str]]:
    """Rows in prompt/completion or messages format. Bad lines are reported by number and
    skipped; the good ones are used."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError("The file is not UTF-8 text. Save it as UTF-8 JSON Lines and upload it again.") from None
    rows, problems = [], []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            if "messages" in d:
                user = next(m["content"] for m in d["messages"] if m["role"] == "user")
                bot = next(m["content"] for m in d["messages"] if m["role"] == "assistant")
            else:
                user, bot = d["prompt"], d["completion"]
            ex = Example(d.get("family", family), str(user), str(bot), d.get("split", "train"))
        except (ValueError, KeyError, TypeError, StopIteration, AttributeError):
            problems.append(f"line {i}: not a JSON object with prompt/completion or user/assistant messages")
            continue
        if problem := check(ex):
            problems.append(f"line {i}: {problem}")
        else:
            rows.append(ex)
    if not rows:
        raise UserError("No usable rows: " + ("; ".join(problems[:5]) or "the file is empty."))
    return rows, problems


def check(ex: Example) -> str | None:
    if not ex.prompt.strip():
        return "the prompt is empty"
    if not ex.completion.strip():
        return "the answer is empty"
    if ex.split not in ("train", "test"):
        return f"split must be train or test, not {ex.split!r}"
    return None
