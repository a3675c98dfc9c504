"""Human preferences for RLHF: pairs of answers to a prompt, the better one first.

Three sources feed the same `Pair`: a person clicking A, B or tie on the page; a simulated
labeler with a hidden taste (for workshop speed); or an upload in TRL's prompt/chosen/rejected
JSON Lines. The simulated labeler prefers the answer with the higher *gold reward*, a score
the engine computes exactly (its taste, and whether the answer is one well-formed sentence
about the person asked), so a run can report how good its answers truly are, not only
what the learned reward model thinks of them (Gao, Schulman & Hilton 2022 call it the gold
reward model; here it is a formula).
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import random
import re
from typing import Callable

import torch

from engine.core.config import UserError
from engine.core.models import GLOBAL_RNG
from engine.core.sampling import context_length
from engine.core.textio import json_lines, said
from engine.text.world import COLORS, PETS, World


@dataclasses.dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str


# Open questions about the people of the world: the SFT model answers each with one of the
# sentences the stories state about the person, and which one varies under sampling (measured on
# the baked sft-base at temperature 1: "Who is Tom?" gave 5 different answers in 16 samples), so a
# taste for short, colourful or animal answers has something to choose from.
TEMPLATES = ("Who is {n}?", "Tell me about {n}.", "What does {n} have?", "Describe {n}.")


def prompts(world: World | None = None) -> list[str]:
    """Every template for every person of the world (48 with the default world)."""
    w = world or World()
    return [t.format(n=p.name) for p in w.people for t in TEMPLATES]


def split_prompts(items: list[str]) -> tuple[list[str], list[str]]:
    """Train and held-out prompts: every fifth distinct prompt is held out."""
    uniq = list(dict.fromkeys(items))
    return [p for i, p in enumerate(uniq) if i % 5 != 4], [p for i, p in enumerate(uniq) if i % 5 == 4]


# --- the gold reward ----------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    """Every word the world's corpus uses, lower-cased."""
    return frozenset(re.findall(r"[a-z]+", World().corpus(3000).lower()))


def well_formed(answer: str) -> bool:
    """One plain sentence in the world's words: a capital first, a full stop last and nowhere
    else, three words or more, every word known, no word twice in a row. Degenerate text
    (run-ons, stutters, invented words, nothing at all) is not."""
    if not re.fullmatch(r"[A-Z][A-Za-z ]*\.", answer) or "  " in answer:
        return False
    words = answer[:-1].lower().split()
    return len(words) >= 3 and set(words) <= vocabulary() and all(a != b for a, b in zip(words, words[1:]))


def _has(words: list[str]) -> Callable[[str], float]:
    pattern = re.compile(r"\b(" + "|".join(words) + r")\b", re.IGNORECASE)
    return lambda answer: float(bool(pattern.search(answer)))


# A taste: what the hidden labeler likes, as a score of the answer. The gold reward adds what any
# labeler wants besides (see gold_reward), so a policy that games a learned reward model with
# degenerate text, or with one high-scoring sentence for every question, is caught: the gold falls
# while the proxy rises.
TASTES: dict[str, tuple[str, Callable[[str], float]]] = {
    "short": ("prefers short answers (minus one per 30 characters)", lambda a: -len(a) / 30),
    "colour": ("prefers answers that mention a colour", _has(COLORS)),
    "animal": ("prefers answers that mention an animal", _has(PETS)),
}


PEOPLE = frozenset(p.name for p in World().people)


def person_asked(prompt: str) -> str | None:
    """The person of the world a question names (the first one it mentions), or None."""
    return next((w for w in re.findall(r"[A-Z][a-z]+", prompt) if w in PEOPLE), None)


def about_person(prompt: str, answer: str) -> bool:
    """The answer is about the person the question names: its first word is their name. A
    question that names nobody of the world cannot be checked, and counts as answered."""
    name = person_asked(prompt)
    return name is None or answer.split(" ", 1)[0] == name


def gold_reward(taste: str, prompt: str, answer: str) -> float:
    """The simulated labeler's true preference: its taste's score, minus 1 unless the answer is
    one well-formed sentence, minus 1 unless it is about the person asked (about_person)."""
    if taste not in TASTES:
        raise UserError(f"Unknown taste {taste!r}: choose one of {', '.join(TASTES)}.")
    return (TASTES[taste][1](answer) - (0.0 if well_formed(answer) else 1.0)
            - (0.0 if about_person(prompt, answer) else 1.0))


def gold_fn(taste: str) -> Callable[[str, str], float]:
    gold_reward(taste, "", "")   # fail early on an unknown taste
    return functools.partial(gold_reward, taste)


# --- sampling answers -----------------------------------------------------------------------------

def prompt_ids(tok, prompt: str, ctx: int, max_new_tokens: int) -> list[int]:
    """The prompt in the chat template, cut from the left so the answer fits in the context."""
    text = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return ids[-max(1, ctx - max_new_tokens):]


@torch.no_grad()
def sample_many(model, tok, prompt_list: list[str], n: int, seed: int, temperature: float = 1.0,
                max_new_tokens: int = 32) -> list[tuple[list[int], list[list[int]]]]:
    """n answers to each prompt, all in one `generate` call: for each prompt, its token ids and
    each answer's ids (its <eos> kept when it wrote one). Prompts of different lengths are padded
    on the left, with the attention mask telling the model where each starts (transformers
    derives the positions from it), so an answer is the one the prompt alone would get. One call
    of 128 rows costs about 2.3 times one of 16 on this CPU: batching is most of the labeler's
    and PPO's speed. Holds the engine's RNG lock: sampling draws from torch's global RNG."""
    ctx = context_length(model)
    ps = [prompt_ids(tok, p, ctx, max_new_tokens) for p in prompt_list]
    width = max(map(len, ps))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in ps for _ in range(n)])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in ps for _ in range(n)])
    with GLOBAL_RNG:
        torch.manual_seed(seed)
        out = model.generate(ids, attention_mask=mask, max_new_tokens=min(max_new_tokens, ctx - width),
                             do_sample=True, temperature=temperature, top_k=None, top_p=None,
                             eos_token_id=tok.eos_token_id, pad_token_id=pad)
    answers = []
    for row in out[:, width:].tolist():
        cut = row.index(tok.eos_token_id) + 1 if tok.eos_token_id in row else len(row)
        answers.append(row[:cut])
    return [(p, answers[i * n:(i + 1) * n]) for i, p in enumerate(ps)]


def sample(model, tok, prompt: str, n: int, seed: int, temperature: float = 1.0,
           max_new_tokens: int = 32) -> tuple[list[int], list[list[int]]]:
    """n answers to one prompt: the prompt's token ids and each answer's ids."""
    return sample_many(model, tok, [prompt], n, seed, temperature, max_new_tokens)[0]


def text_of(tok, answer_ids: list[int]) -> str:
    return tok.decode(answer_ids, skip_special_tokens=True).strip()


def sample_texts(model, tok, prompt: str, n: int, seed: int, temperature: float = 1.0,
                 max_new_tokens: int = 32) -> list[str]:
    return [text_of(tok, a) for a in sample(model, tok, prompt, n, seed, temperature, max_new_tokens)[1]]


@dataclasses.dataclass
class LabelStats:
    compared: int = 0     # pairs the labeler looked at
    ties: int = 0         # equal gold: no preference, not kept
    flipped: int = 0      # noise: the worse answer marked as chosen


def simulate(model, tok, prompt_list: list[str], taste: str, noise: float, n_pairs: int, seed: int = 0,
             temperature: float = 1.0, per_prompt: int = 16, rank: int = 4, prompts_per_call: int = 8,
             max_new_tokens: int = 32, stop: Callable[[], bool] = lambda: False,
             progress: Callable[[int, int], None] = lambda done, total: None) -> tuple[list[Pair], LabelStats]:
    """A simulated labeler ranking answers, as InstructGPT's labelers ranked K = 4 to 9 answers to
    a prompt, each ranking giving its C(K, 2) comparisons (Ouyang et al. 2022, section 3.5). For
    each prompt the SFT model samples `per_prompt` answers; the labeler reads the first `rank`
    different ones (two identical answers are no comparison) and compares every two of them by
    their gold reward. Equal scores are a tie and are not kept (InstructGPT's rankings have no
    ties to train on); with probability `noise` it picks the other answer, as real labelers
    disagree (InstructGPT's labelers agreed with each other 72.6% of the time, section 3.4).
    Draws `prompts_per_call` prompts per sampling call until `n_pairs` are kept or 20 times that
    many comparisons were made. progress(kept, n_pairs) after each call."""
    gold = gold_fn(taste)
    rng = random.Random(seed)
    pairs, stats = [], LabelStats()
    order = list(prompt_list)
    call = 0
    while len(pairs) < n_pairs and stats.compared < 20 * n_pairs and not stop():
        batch = [order[(call * prompts_per_call + j) % len(order)] for j in range(prompts_per_call)]
        sampled = sample_many(model, tok, batch, per_prompt, seed * 100_003 + call, temperature, max_new_tokens)
        call += 1
        for prompt, (_, answers) in zip(batch, sampled):
            shown = list(dict.fromkeys(text_of(tok, a) for a in answers))[:rank]
            for a, b in itertools.combinations(shown, 2):
                if len(pairs) == n_pairs:
                    break
                stats.compared += 1
                ga, gb = gold(prompt, a), gold(prompt, b)
                if ga == gb:
                    stats.ties += 1
                    continue
                good, bad = (a, b) if ga > gb else (b, a)
                if rng.random() < noise:
                    good, bad = bad, good
                    stats.flipped += 1
                pairs.append(Pair(prompt, good, bad))
        progress(len(pairs), n_pairs)
    return pairs, stats


# --- human labels and JSONL -----------------------------------------------------------------------

def pairs_from_labels(labels: list[dict]) -> tuple[list[Pair], int]:
    """Pairs from clicks {"prompt", "a", "b", "choice": "A"|"B"|"tie"}; returns them and the ties."""
    pairs, ties = [], 0
    for lab in labels:
        if lab["choice"] == "tie":
            ties += 1
        else:
            a, b = (lab["a"], lab["b"]) if lab["choice"] == "A" else (lab["b"], lab["a"])
            pairs.append(Pair(lab["prompt"], a, b))
    return pairs, ties


def labels_to_jsonl(labels: list[dict]) -> str:
    """Every click in TRL's preference format (prompt/chosen/rejected); a tie is kept with "tie": true."""
    lines = []
    for lab in labels:
        if lab["choice"] == "tie":
            lines.append({"prompt": lab["prompt"], "chosen": lab["a"], "rejected": lab["b"], "tie": True})
        else:
            p = pairs_from_labels([lab])[0][0]
            lines.append(dataclasses.asdict(p))
    return "".join(json.dumps(x) + "\n" for x in lines)


def pairs_to_jsonl(pairs: list[Pair]) -> str:
    return "".join(json.dumps(dataclasses.asdict(p)) + "\n" for p in pairs)


def parse_jsonl(data: bytes) -> tuple[list[Pair], list[str]]:
    """Rows in TRL's explicit-prompt preference format: {"prompt", "chosen", "rejected"}, each a
    string or a list of chat messages. Ties and bad lines are reported by number and skipped."""
    pairs, problems = [], []
    for i, d in json_lines(data):
        try:
            pair = Pair(said(d["prompt"], "user"), said(d["chosen"], "assistant"), said(d["rejected"], "assistant"))
        except (KeyError, TypeError, StopIteration, AttributeError):   # d is None: not a JSON object
            problems.append(f"line {i}: not a JSON object with prompt, chosen and rejected")
            continue
        if d.get("tie"):
            problems.append(f"line {i}: a tie, which says neither answer is better")
        elif problem := check(pair):
            problems.append(f"line {i}: {problem}")
        else:
            pairs.append(pair)
    if not pairs:
        raise UserError("No usable pairs: " + ("; ".join(problems[:5]) or "the file is empty."))
    return pairs, problems


def check(p: Pair) -> str | None:
    if not p.prompt.strip():
        return "the prompt is empty"
    if p.chosen.strip() == p.rejected.strip():
        return "chosen and rejected are the same answer, so there is no preference to learn"
    return None


def usable(pairs: list[Pair]) -> tuple[list[Pair], list[str]]:
    """The pairs training can use, and why the others are left out."""
    keep, problems = [], []
    for i, p in enumerate(pairs, 1):
        if problem := check(p):
            problems.append(f"pair {i}: {problem}")
        else:
            keep.append(p)
    return keep, problems


def split_pairs(pairs: list[Pair]) -> tuple[list[Pair], list[Pair]]:
    """Train and held-out pairs, split by prompt (a held-out prompt is never trained on); with
    too few prompts for that, every fifth pair is held out instead."""
    _, held = split_prompts([p.prompt for p in pairs])
    test = [p for p in pairs if p.prompt in held]
    if not test or len(test) == len(pairs):
        return [p for i, p in enumerate(pairs) if i % 5 != 4], [p for i, p in enumerate(pairs) if i % 5 == 4]
    return [p for p in pairs if p.prompt not in held], test
