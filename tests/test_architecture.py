"""The engine's shape, held: no Streamlit in engine/, the core imports no stage, no import circles,
no module over 500 lines, and a new stage runs as a job through the public API alone
(ARCHITECTURE.md, "How to add a stage")."""
import ast
import dataclasses
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

from engine.core import runs
from engine.core.config import StageConfig, UserError, field
from engine.core.jobs import JobRunner
from engine.core.loop import LoopSettings, train
from engine.core.models import build_model
from engine.core.report import Reporter, StageResult, Task
from engine.core.runs import Trained
from engine.core.tokenizer import char_tokenizer

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"


def engine_imports() -> dict[str, set[str]]:
    """module -> the engine modules it imports (at any depth in the file)."""
    graph = {}
    for path in ENGINE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engine"):
                found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("engine")}
        modules = {p for p in found if (ROOT / (p.replace(".", "/") + ".py")).exists()}
        graph[name] = modules - {name}
    return graph


def test_the_engine_never_imports_streamlit():
    code = ("import importlib, pathlib, sys\n"
            "for p in sorted(pathlib.Path('engine').rglob('*.py')):\n"
            "    m = '.'.join(p.with_suffix('').parts).removesuffix('.__init__')\n"
            "    if m != 'engine.__main__': importlib.import_module(m)\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] == 'streamlit'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_the_core_imports_no_stage_and_there_are_no_import_circles():
    graph = engine_imports()
    for name, deps in graph.items():
        if name.startswith("engine.core"):
            assert all(d.startswith("engine.core") for d in deps), (name, deps)
    seen, stack = set(), []

    def visit(n):
        assert n not in stack, " -> ".join(stack[stack.index(n):] + [n])
        if n in seen:
            return
        stack.append(n)
        for d in graph.get(n, ()):
            visit(d)
        stack.pop()
        seen.add(n)

    for n in graph:
        visit(n)


def test_no_engine_module_is_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in ENGINE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long


def test_no_stage_asks_a_job_what_it_can_do():
    """The contract is explicit: no hasattr/getattr on a reporter or job anywhere in the engine."""
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("hasattr", "getattr") and node.args:
                first = node.args[0]
                assert getattr(first, "id", "") not in ("job", "reporter", "rep"), (path, node.lineno)


# --- a new stage, through the public API only ------------------------------------------------------

@dataclasses.dataclass
class CountingConfig(StageConfig):
    """Step 1: the toy stage's config: learn to repeat a two-letter pattern."""
    steps: int = field(100, "training steps", range=(1, 1000))
    lr: float = field(5e-3, "peak learning rate", range=(1e-5, 1.0))
    seed: int = field(0, "random seed")


def fit_counting(cfg: CountingConfig, reporter: Reporter) -> Trained:
    """Step 3: build, batch, loss, the one loop."""
    if cfg.steps < 1:
        raise UserError("Give it at least one step.")                      # step 5
    tok = char_tokenizer("ab")
    ids = torch.tensor(tok.convert_tokens_to_ids(list("ab" * 40)))
    model = build_model("clm", len(tok), 1, 1, 16, 16, cfg.seed, tok.pad_token_id, tok.eos_token_id)
    gen = torch.Generator().manual_seed(cfg.seed)

    def next_batch(step):
        starts = torch.randint(0, len(ids) - 16, (8,), generator=gen)
        x = torch.stack([ids[s:s + 16] for s in starts.tolist()])
        return {"input_ids": x, "labels": x}

    def evaluate(step, final):
        x = ids[:16][None]
        return {"eval_loss": model(input_ids=x, labels=x).loss.item()}

    reporter.set_info(vocab_size=len(tok))                                 # step 4
    result = train(model, lambda m, b: m(**b).loss, next_batch,
                   LoopSettings(steps=cfg.steps, lr=cfg.lr, eval_every=20, max_seconds=60), reporter, evaluate)
    return Trained(model.eval(), tok, result, {"vocab_size": len(tok)})


def run_counting(cfg: CountingConfig, reporter: Reporter, owner: str | None = None) -> StageResult:
    """Step 6: fit, then save as a run."""
    return fit_counting(cfg, reporter).save("counting", cfg.to_dict(), name=f"ab-{cfg.key()[:6]}", owner=owner)


def test_a_new_stage_runs_as_a_job_through_the_public_api(runs_dir):
    runner = JobRunner(measure_energy=False)
    cfg = CountingConfig()
    job = runner.submit(cfg.key(), Task(run_counting, cfg, {"owner": "me"}), owner="me", label="ab",
                        total_steps=cfg.steps, stage="counting")
    end = time.time() + 120
    while job.active and time.time() < end:
        time.sleep(0.05)
    snap = job.snapshot()
    assert snap["status"] == "done", snap["message"]
    evals = [r["eval_loss"] for r in snap["records"] if "eval_loss" in r]
    assert evals[0] > math.log(2) and evals[-1] < 0.3, evals             # it learned the pattern
    assert snap["progress"] == 1.0 and snap["info"]["vocab_size"] == len(char_tokenizer("ab"))
    info = runs.read_info(snap["result"])
    assert info.stage == "counting" and info.owner == "me" and info.summary["eval_loss"] == evals[-1]
    assert runner.submit(cfg.key(), Task(run_counting, cfg), owner="you") is job   # replayed
    bad = runner.submit("bad", Task(run_counting, cfg.replace(steps=0)), owner="me")
    while bad.active:
        time.sleep(0.05)
    assert bad.status == "failed" and bad.message == "Give it at least one step."
