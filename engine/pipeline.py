"""The run tree: which run was tuned from which (pretrain -> SFT -> RLHF / constitutional AI),
and one prompt answered by every model along a line of it, so each stage's effect shows at once."""
from __future__ import annotations

import dataclasses
import typing

from engine.core import runs
from engine.core.config import StageConfig, UserError, field
from engine.core.runs import RunInfo
from engine.core.sampling import generate
from engine.sft import answer

# The stages a language model passes through, in order. Other saved runs (induction toys, reward
# models) are not steps of this line.
STAGES = ("pretrain", "sft", "rlhf", "cai")
CHAT_STAGES = STAGES[1:]


@dataclasses.dataclass
class CompareConfig(StageConfig):
    """One prompt put to every model along one line of the run tree."""
    end: str = field("", "the run the line ends at (a folder name; empty: the deepest one)")
    # A base model continues this as a story; the tuned ones answer it (the world's fact about Amy).
    prompt: str = field("Tell me about Amy.", "what every model is asked", private=True)
    greedy: bool = field(True, "greedy decoding (each model's single most likely answer)")
    seed: int = field(0, "random seed for sampled answers")


def tree(owner: str | None, also: typing.Iterable[str] = ()) -> list[RunInfo]:
    """The pipeline's runs that are baked, this owner's, or named in `also` (folder names, e.g. the
    results a replayed job gave this visitor), with every ancestor they were tuned from, whoever
    trained it; in pipeline order. Only GPT-style pretraining: a BERT-style model cannot answer."""
    every = {r.path.name: r for r in runs.list_runs() if r.stage in STAGES and r.objective == "clm"}
    picked = {n for n, r in every.items() if r.baked or r.owner == owner or n in set(also)}
    for name in list(picked):
        while (parent := every[name].parent) in every and parent not in picked:
            picked.add(parent)
            name = parent
    return sorted((every[n] for n in picked), key=lambda r: (STAGES.index(r.stage), not r.baked, -r.created))


def chain(leaf: RunInfo, known: list[RunInfo]) -> list[RunInfo]:
    """The leaf and its ancestors, base first. A parent that is no longer on disk ends the line."""
    by_name = {r.path.name: r for r in known}
    line = [leaf]
    while line[0].parent and line[0].parent in by_name and len(line) <= len(known):
        line.insert(0, by_name[line[0].parent])
    return line


def leaves(known: list[RunInfo]) -> list[RunInfo]:
    """Runs nothing was tuned from, the deepest stage first: the lines worth comparing."""
    parents = {r.parent for r in known}
    ends = [r for r in known if r.path.name not in parents]
    return sorted(ends, key=lambda r: (-STAGES.index(r.stage), r.baked, -r.created))


def red_team_examples(seed: int = 0) -> list:
    """One held-out red-team prompt of each kind the constitutional AI page uses."""
    from engine.cai.constitution import red_team
    first: dict = {}
    for p in red_team(seed):
        if p.split == "test":   # never trained on, by either tuned model
            first.setdefault(p.kind, p)
    return list(first.values())


def respond(info: RunInfo, prompt: str, greedy: bool = True, seed: int = 0, max_new_tokens: int = 48) -> str:
    """What this run's model says to `prompt`. Tuned models get it in their chat template and
    answer; a base model has no template and simply continues the text, up to the end of its line."""
    if not prompt.strip():
        raise UserError("Type a prompt first.")
    model, tok, _ = runs.load_run(info.path)
    if info.stage in CHAT_STAGES:
        return answer(model, tok, prompt, greedy=greedy, max_new_tokens=max_new_tokens, seed=seed)
    text = generate(model, tok, prompt.rstrip() + " ", max_new_tokens=max_new_tokens,
                    temperature=0.0 if greedy else 0.8, seed=seed)
    return text.split("\n")[0].strip()
