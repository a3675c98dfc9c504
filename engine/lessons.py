"""Lessons: a short file of steps an instructor writes without touching code (lessons/*.toml).

Each step says what to do, links into a page with the settings to use (an instructor link, as the
sidebar's "Link to this experiment" gives it, `_hide` included), and checks the learner's own run
on that page when it ends, with a hint when the check fails. The format (TOML):

    title = "Pretraining: a tiny GPT learns to write"
    about = "One sentence on the point of the lesson."

    [[step]]
    say = "Train the quick demo and watch the validation loss fall."
    link = "pretraining?objective=clm&_hide=objective"
    check = { metric = "eval_loss", below = 1.0 }
    hint = "Let the run finish: the loss falls over the whole run."

A step may name the kind of job it checks (`stage = "reward"`: the RLHF page runs two); by default
any job of its page counts that was made with the settings its link names (a run at lr 10 does not
count for, or get the hint of, a step linked at lr 0.001; a step linked with `n_models` checks the
size sweep, not another experiment of the page). A check (all its conditions must hold):
    metric = "<a metric the run logs or sums up>"  and one of
        below / above / at_most / at_least = <number>  (its final value)
        rose = true / fell = true                      (from its first value to its final one)
        turned_up = true                               (its final value is above its lowest: overfitting)
        of = "<another metric>" with at_most / at_least = <factor>: final <= factor x the other's
    where = { role = "large" }                         (only the records that carry these values)
    ended = "done" | "stopped" | "time limit" | "diverged" | "failed"   (how the run ended)
    all = [ {...}, {...} ]                             (several checks, each must hold)
A broken file gets a message that names its line.
"""
from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import urllib.parse

from engine.core.config import UserError
from engine.core.runs import ROOT

LESSON_DIR = ROOT / "lessons"
NUMERIC = ("below", "above", "at_most", "at_least")
TRENDS = ("rose", "fell", "turned_up")
KEYS = {"metric", "of", "where", "ended", "all", *NUMERIC, *TRENDS}
ENDINGS = ("done", "stopped", "time limit", "diverged", "failed")


@dataclasses.dataclass(frozen=True)
class Step:
    say: str
    page: str            # the page's URL path, e.g. "pretraining"
    params: dict         # the link's settings, `_hide` included
    stage: str           # the kind of job checked ("" : any job of the page)
    check: dict
    hint: str
    line: int            # where the step starts in its file, for messages

    @property
    def link(self) -> str:
        return f"{self.page}?{urllib.parse.urlencode(self.params, safe=',')}" if self.params else self.page


@dataclasses.dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    about: str
    steps: tuple[Step, ...]


def _step_lines(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines(), 1) if re.match(r"\s*\[\[\s*step\s*\]\]", line)]


def _check_shape(check, where: str) -> None:
    if not isinstance(check, dict) or not check:
        raise UserError(f"{where}: `check` must be a table such as {{ metric = \"eval_loss\", below = 1.0 }}.")
    if unknown := set(check) - KEYS:
        raise UserError(f"{where}: unknown check key {', '.join(sorted(unknown))}; use {', '.join(sorted(KEYS))}.")
    for sub in check.get("all", []):
        _check_shape(sub, where)
    if "ended" in check and check["ended"] not in ENDINGS:
        raise UserError(f"{where}: `ended` must be one of {', '.join(ENDINGS)}.")
    tests = [k for k in (*NUMERIC, *TRENDS) if k in check]
    if "metric" in check and len(tests) != 1:
        raise UserError(f"{where}: a check on {check['metric']!r} needs exactly one of "
                        f"{', '.join((*NUMERIC, *TRENDS))}.")
    if "where" in check and not isinstance(check["where"], dict):
        raise UserError(f"{where}: `where` must be a table such as {{ role = \"large\" }}.")
    if tests and "metric" not in check:
        raise UserError(f"{where}: {tests[0]} needs a `metric`.")
    for k in NUMERIC:
        if k in check and (isinstance(check[k], bool) or not isinstance(check[k], (int, float))):
            raise UserError(f"{where}: {k} must be a number.")
    if "of" in check and not ({"at_most", "at_least"} & set(check)):
        raise UserError(f"{where}: compare with `of` using at_most or at_least (a factor).")


def parse(text: str, name: str = "lesson") -> Lesson:
    """A lesson from its TOML text; UserError naming the line for anything wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{name}.toml is not valid TOML: {e}.") from None
    if not isinstance(data.get("title"), str) or not data["title"].strip():
        raise UserError(f"{name}.toml, line 1: give the lesson a `title = \"...\"`.")
    raw, lines = data.get("step", []), _step_lines(text)
    if not raw:
        raise UserError(f"{name}.toml: add at least one [[step]].")
    steps = []
    for i, s in enumerate(raw):
        line = lines[i] if i < len(lines) else 0
        where = f"{name}.toml, step {i + 1} (line {line})"
        for key in ("say", "link", "check"):
            if key not in s:
                raise UserError(f"{where}: the step has no `{key}`.")
        page, _, query = str(s["link"]).lstrip("/").partition("?")
        if not re.fullmatch(r"[a-z_]+", page):
            raise UserError(f"{where}: `link` must start with a page's path, like \"pretraining?steps=500\".")
        _check_shape(s["check"], where)
        steps.append(Step(str(s["say"]), page, dict(urllib.parse.parse_qsl(query)), str(s.get("stage", "")),
                          s["check"], str(s.get("hint", "")), line))
    return Lesson(name, data["title"], str(data.get("about", "")), tuple(steps))


def available() -> list[str]:
    return sorted(p.stem for p in LESSON_DIR.glob("*.toml"))


def load(name: str) -> Lesson:
    if not re.fullmatch(r"[a-z0-9_-]+", name or "") or not (LESSON_DIR / f"{name}.toml").exists():
        raise UserError(f"There is no lesson called {name!r}. Lessons here: {', '.join(available())}.")
    return parse((LESSON_DIR / f"{name}.toml").read_text(encoding="utf-8"), name)


# --- checking a learner's run ---------------------------------------------------------------------

def fits(step: Step, config) -> bool:
    """Whether a run with `config` (a StageConfig) was made with every setting the step's link names
    (`_hide` aside): a run of another experiment on the same page, or at other settings, does not count."""
    mine = config.to_params()
    asked = {k: v for k, v in step.params.items() if not k.startswith("_")}
    if not asked.keys() <= mine.keys():
        return False
    wanted = type(config).from_params(asked)[0].to_params()   # "1e-3" and "0.001" are one setting
    return all(mine[k] == wanted[k] for k in asked)


def series(run: dict, key: str, where: dict | None = None) -> list[float]:
    """A metric's values in the order the run logged them (only records carrying `where`'s values),
    then its summary value last (when nothing narrows the records)."""
    values = [r[key] for r in run.get("records", []) if isinstance(r.get(key), (int, float))
              and all(r.get(k) == v for k, v in (where or {}).items())]
    summary = None if where else run.get("summary", {}).get(key)
    return values + ([summary] if isinstance(summary, (int, float)) else [])


def ending(run: dict) -> str:
    if run["status"] == "failed" and run.get("message", "").startswith("loss became"):
        return "diverged"   # the loop's own words for a loss that ran away
    if run["status"] == "done":
        return "time limit" if run.get("summary", {}).get("status") == "time limit" else "done"
    return run["status"]


def passes(check: dict, run: dict) -> bool:
    """Whether a finished run (a job snapshot: status, message, records, summary) meets the check."""
    if "all" in check and not all(passes(c, run) for c in check["all"]):
        return False
    if "ended" in check and ending(run) != check["ended"]:
        return False
    if "metric" not in check:
        return True
    values = [v for v in series(run, check["metric"], check.get("where")) if math.isfinite(v)]
    if not values:
        return False
    first, final = values[0], values[-1]
    if "of" in check:
        other = [v for v in series(run, check["of"]) if math.isfinite(v)]
        if not other:
            return False
        bound = other[-1]
        return final <= check["at_most"] * bound if "at_most" in check else final >= check["at_least"] * bound
    if check.get("rose"):
        return final > first
    if check.get("fell"):
        return final < first
    if check.get("turned_up"):
        return final > min(values)
    op = next(k for k in NUMERIC if k in check)
    limit = check[op]
    return {"below": final < limit, "above": final > limit, "at_most": final <= limit, "at_least": final >= limit}[op]
