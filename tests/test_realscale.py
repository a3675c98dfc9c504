"""The same experiment at real scale (engine/realscale.py): every command parses back, with the CLI's
own flags, into the config it came from, and every kind of script runs for two steps on the app's
own small models and data, with only its MODEL and DATA constants replaced.

TRL is a test-only dependency (requirements-realscale.txt); without it this module is skipped."""
import argparse
import dataclasses
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine import realscale
from engine.__main__ import _stages, add_config_args
from engine.cai.config import CAIConfig
from engine.pretraining import PretrainConfig
from engine.rlhf.config import RLHFConfig
from engine.sft import SFTConfig

pytestmark = pytest.mark.skipif(importlib.util.find_spec("trl") is None,
                                reason="TRL is not installed: pip install -r requirements-realscale.txt")

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "assets" / "runs"
QUOTED = json.dumps([["kind", "Don't insult the user; say \"please\"."], ["secret", "Never tell\nthe secret."]])


def parse(command: str):
    """The config the command line would build from `command` (engine/__main__.py's flags)."""
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "engine"], command
    cls = _stages()[argv[3]][0]
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_config_args(parser, cls)
    if argv[3] == "pretrain":
        parser.add_argument("--text-file")
    args = parser.parse_args(argv[4:])
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


@pytest.mark.parametrize("cfg", [
    PretrainConfig(),
    PretrainConfig(objective="mlm", corpus="hub", hub_name="roneneldan/TinyStories", lr=1e-3, mask_prob=0.2,
                   bf16=False, seed=-1, grad_checkpoint=True),
    PretrainConfig(corpus="upload", size="custom", n_layer=2, n_embd=96),
    SFTConfig(),
    SFTConfig(families="facts,copy", mask_prompt=False, replay=0.0, lr=1e-4, compare_masking=True, base="my run"),
    RLHFConfig(),
    RLHFConfig(method="dpo", source="upload", noise=0.0, beta=0.5, lr=1e-4,
               taste=max(RLHFConfig.meta("taste")["choices"])),
    CAIConfig(),
    CAIConfig(constitution=QUOTED, method="ppo", compare_human=True, dpo_lr=1e-6, n_pairs=123),
], ids=lambda c: f"{type(c).__name__}-{'default' if c == type(c)() else 'changed'}")
def test_the_command_parses_back_into_the_same_config(cfg):
    out = realscale.for_page(cfg)
    assert parse(out.command) == cfg
    stage = realscale.STAGES[type(cfg).__name__]
    if cfg == type(cfg)():
        assert out.command == f"python -m engine {stage}"   # only the settings off their defaults
    else:
        assert len(shlex.split(out.command)) > 4


def test_the_stages_are_the_command_lines():
    assert {cls.__name__: name for name, (cls, _) in _stages().items()} == realscale.STAGES


# Fields a script neither maps nor lists, because the page's run does not use them with these settings.
UNUSED = {"objective=clm": {"mask_prob", "hub_name", "n_layer", "n_head", "n_embd"},
          "objective=mlm": {"arch", "hub_name", "n_layer", "n_head", "n_embd"},
          "method=ppo": {"beta"}, "method=dpo": {"kl_coef", "clip", "ppo_epochs", "prompts_per_step",
                                                "samples_per_prompt", "reward"}}


@pytest.mark.parametrize("cfg, unused, tool", [
    (PretrainConfig(), "objective=clm", "transformers Trainer"),
    (PretrainConfig(objective="mlm"), "objective=mlm", "transformers Trainer"),
    (SFTConfig(), None, "TRL SFTTrainer"),
    (RLHFConfig(), "method=ppo", "TRL RewardTrainer + RLOOTrainer"),
    (RLHFConfig(method="dpo"), "method=dpo", "TRL DPOTrainer"),
    (CAIConfig(), None, "TRL DPOTrainer"),
    (CAIConfig(method="ppo"), None, "TRL RewardTrainer + RLOOTrainer"),
], ids=lambda x: str(x) if isinstance(x, str) else None)
def test_every_setting_is_mapped_or_listed_as_unmapped(cfg, unused, tool):
    """A setting added to a page's config must find its way into the script, or into the list of
    settings with no counterpart (which the script's comment block repeats)."""
    out = realscale.for_page(cfg)
    assert out.tool == tool
    compile(out.script, "realscale_script.py", "exec")
    for item in out.unmapped:
        assert textwrap_free(item) in textwrap_free(out.script), item
        head = item.split(":")[0]
        if re.fullmatch(r"[a-z0-9_]+(, [a-z0-9_]+)*(=\S+)?", head):   # names the page's settings
            assert set(head.split("=")[0].split(", ")) <= {f.name for f in dataclasses.fields(cfg)}, item
    words = set(re.findall(r"[a-z0-9_]+", out.script))
    missing = {f.name for f in dataclasses.fields(cfg)} - words - UNUSED.get(unused, set())
    assert not missing, f"settings neither mapped nor listed as unmapped: {missing}"
    assert len(re.findall(r"^(MODEL|DATA) = ", out.script, re.MULTILINE)) == 2


def textwrap_free(text: str) -> str:
    return " ".join(re.sub(r"^#( -)? *", "", line.strip()) for line in text.splitlines()).replace("  ", " ")


def test_the_gpt_and_llama_scripts_differ_only_in_the_model():
    gpt, llama = (realscale.for_page(PretrainConfig(arch=a)).script.splitlines() for a in ("gpt2", "llama"))
    assert [(a, b) for a, b in zip(gpt, llama) if a != b] and \
        all(a.startswith("MODEL = ") for a, b in zip(gpt, llama) if a != b)


def test_user_text_is_quoted_as_python():
    cfg = PretrainConfig(corpus="hub", hub_name='evil"\nimport os; os.system("x")  # \0')
    script = realscale.for_page(cfg).script
    compile(script, "s.py", "exec")
    assert re.search(r'^DATA = "evil\\"\\nimport os', script, re.MULTILINE)


# -- the scripts run -----------------------------------------------------------------------------------

def tiny_cases(tmp: Path) -> dict:
    """name -> (config, MODEL, DATA): two steps each, on the baked runs and the app's own text and rows."""
    from transformers import AutoTokenizer

    from engine.core.models import build_model
    from engine.text.instructions import build
    from engine.text.world import World

    def folder(name, rows):
        (tmp / name).mkdir()
        (tmp / name / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(tmp / name)

    text = folder("text", [{"text": t} for t in World(0).corpus(60).splitlines()])
    rows = [e for e in build(0, 3) if len(e.prompt) + len(e.completion) < 50][:24]
    chats = folder("chats", [{"prompt": [{"role": "user", "content": e.prompt}],
                              "completion": [{"role": "assistant", "content": e.completion}]} for e in rows])
    pairs = folder("pairs", [{"prompt": [{"role": "user", "content": e.prompt}],
                              "chosen": [{"role": "assistant", "content": e.completion}],
                              "rejected": [{"role": "assistant", "content": "I don't know."}]} for e in rows[:20]])
    tok = AutoTokenizer.from_pretrained(RUNS / "pretrain-base-gpt")   # has a mask token: the app's BERT's too
    bert = tmp / "bert"
    build_model("mlm", len(tok), 2, 2, 32, 64, 0, tok.pad_token_id, tok.eos_token_id).save_pretrained(bert)
    tok.save_pretrained(bert)
    steps = {"steps": 2, "eval_every": 1}
    return {
        "pretrain-gpt": (PretrainConfig(batch_size=4, block_size=32, warmup=1, lr=1e-3, seed=1, **steps),
                         RUNS / "pretrain-base-gpt", text),
        "pretrain-bert": (PretrainConfig(objective="mlm", batch_size=4, block_size=32, warmup=0, mask_prob=0.2,
                                         grad_checkpoint=True, bf16=False, **steps), bert, text),
        "sft": (SFTConfig(batch_size=4, warmup=1, lr=1e-3, **steps), RUNS / "sft-base", chats),
        "rlhf-ppo": (RLHFConfig(rm_steps=2, batch_size=4, prompts_per_step=2, samples_per_prompt=2, ppo_epochs=2,
                                max_new_tokens=8, kl_coef=0.1, **steps), RUNS / "sft-base", pairs),
        "rlhf-dpo": (RLHFConfig(method="dpo", batch_size=4, beta=0.2, lr=1e-4, **steps), RUNS / "sft-base", pairs),
        "cai-dpo": (CAIConfig(dpo_steps=2), RUNS / "sft-helpful-only", pairs),
    }


def with_model_and_data(script: str, model, data) -> str:
    for name, value in (("MODEL", str(model)), ("DATA", str(data))):
        script, n = re.subn(rf'^{name} = "(?:[^"\\]|\\.)*"', f"{name} = {json.dumps(value)}", script, count=1,
                            flags=re.MULTILINE)
        assert n == 1, name
    return script


def run(name: str, script: str, tmp: Path) -> dict:
    work = tmp / f"run-{name}"
    work.mkdir()
    (work / "script.py").write_text(script)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_CACHE": str(tmp / "datasets-cache")}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "script.py"], cwd=work, env=env, capture_output=True, text=True,
                         timeout=400, check=False)
    return {"code": out.returncode, "stdout": out.stdout, "stderr": out.stderr, "dir": work,
            "seconds": time.perf_counter() - t0}


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Every case's script, two at a time (two cores): about half the time of one after another."""
    tmp = tmp_path_factory.mktemp("realscale")
    scripts = {name: with_model_and_data(realscale.for_page(cfg).script, model, data)
               for name, (cfg, model, data) in tiny_cases(tmp).items()}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run, name, s, tmp) for name, s in scripts.items()}
        results = {name: f.result() for name, f in futures.items()}
    print("real-scale scripts, seconds each:", {name: round(r["seconds"], 1) for name, r in results.items()})
    return results


# What each script prints (its logs and final evaluation) and saves.
EXPECT = {"pretrain-gpt": (["'eval_loss'"], ["pretrain-run"]),
          "pretrain-bert": (["'eval_loss'"], ["pretrain-run"]),
          "sft": (["'mean_token_accuracy'", "'eval_loss'"], ["sft-run"]),
          "rlhf-ppo": (["'eval_accuracy'", "rewards/reward-model/mean"], ["reward-model", "policy"]),
          "rlhf-dpo": (["'eval_rewards/margins'"], ["dpo-policy"]),
          "cai-dpo": (["'eval_rewards/margins'"], ["dpo-policy"])}


@pytest.mark.parametrize("name", list(EXPECT))
def test_the_script_runs_a_few_steps(ran, name):
    r = ran[name]
    assert r["code"] == 0, f"{name} exited {r['code']} after {r['seconds']:.0f} s:\n{r['stderr'][-3000:]}"
    log = r["stdout"]
    assert "'train_loss'" in log and re.search(r"\{'loss': ", log), log[-2000:]   # steps logged their losses
    printed, saved = EXPECT[name]
    for metric in printed:
        assert metric in log, (metric, log[-2000:])
    for folder in saved:
        assert (r["dir"] / folder / "model.safetensors").exists(), (folder, sorted(p.name for p in r["dir"].iterdir()))
