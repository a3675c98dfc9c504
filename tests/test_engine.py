"""The engine core: loop, job runner, run store, pretraining stage, bad input."""
import math
import re
import subprocess
import sys
import time

import pytest
import torch

from engine import pretraining as pretrain
from engine.core import report, runs, textio
from engine.core.config import UserError
from engine.core.jobs import JobRunner
from engine.core.models import build_model
from engine.core.report import StageResult, Task
from engine.core.tokenizer import bpe_tokenizer, char_tokenizer, encode
from engine.pretraining import PretrainConfig
from engine.text import corpus

TINY = PretrainConfig(size="50k", steps=150, eval_every=50, sample_every=1000, max_seconds=120)


class Recorder(report.Recorder):
    """The engine's Recorder, with the curves pulled out."""

    def losses(self):
        return [r["loss"] for r in self.records if "loss" in r]

    def val(self):
        return [r["eval_loss"] for r in self.records if "eval_loss" in r]


def wait_for(pred, timeout=60.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_loss_falls_well_below_uniform_on_builtin_corpus():
    rec = Recorder()
    path = pretrain.run(TINY, rec).run
    val = rec.val()
    assert val[0] > 3.5                      # ln(43) = 3.76 at the start: a uniform guess
    assert val[-1] < 2.6, val                # 150 steps of a 60k-parameter model
    assert rec.samples and "text" in rec.samples[-1]
    assert runs.read_info(path).summary["eval_loss"] == pytest.approx(val[-1])


def test_same_seed_same_losses_and_different_seed_differs():
    cfg = TINY.replace(steps=30, eval_every=10)
    a, b, c = Recorder(), Recorder(), Recorder()
    pretrain.fit(cfg, a)
    pretrain.fit(cfg, b)
    pretrain.fit(cfg.replace(seed=1), c)
    assert a.losses() == b.losses() and a.val() == b.val()
    assert a.losses() != c.losses()


def test_mlm_masks_the_configured_share_and_clm_labels_are_shifted_inputs():
    cfg = TINY.replace(objective="mlm")
    data = pretrain.prepare(cfg, corpus.world_text())
    from transformers import DataCollatorForLanguageModeling
    coll = DataCollatorForLanguageModeling(data.tokenizer, mlm_probability=0.15, seed=0)
    x = pretrain.windows(data.train, torch.arange(0, 64 * 200, 64), 64)
    b = coll(list(x))
    chosen = b["labels"] != -100
    assert abs(chosen.float().mean().item() - 0.15) < 0.01
    assert (b["labels"][chosen] == x[chosen]).all()              # labels are the original tokens
    masked = b["input_ids"][chosen] == data.tokenizer.mask_token_id
    assert abs(masked.float().mean().item() - 0.8) < 0.03        # 80% <mask>, the rest random/kept
    # CLM: the model is given labels = inputs and predicts token t+1 from tokens <= t.
    model = build_model("clm", len(data.tokenizer), 1, 1, 16, 64, 0, 0, 3)
    out = model(input_ids=x[:4], labels=x[:4])
    manual = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, out.logits.shape[-1]),
                                               x[:4, 1:].reshape(-1))
    assert out.loss.item() == pytest.approx(manual.item(), rel=1e-5)


def test_mlm_run_learns():
    rec = Recorder()
    pretrain.fit(TINY.replace(objective="mlm", steps=200), rec)
    assert rec.val()[-1] < rec.val()[0] - 0.5
    assert "masked" in rec.samples[-1]


def test_diverging_learning_rate_stops_with_a_clear_message():
    runner = JobRunner()
    job = runner.submit("nan", Task(pretrain.run, TINY.replace(lr=10.0, steps=300)), owner="t")
    assert wait_for(lambda: not job.active)
    assert job.status == "failed"
    assert re.fullmatch(r"loss became (NaN|infinite|[\d.]+, over 4x its start of [\d.]+) at step \d+: lower the learning rate", job.message)


def test_stop_and_pause_are_honoured_within_one_step():
    runner = JobRunner()
    job = runner.submit("long", Task(pretrain.run, TINY.replace(steps=100000, max_seconds=60)), owner="t")
    assert wait_for(lambda: sum("loss" in r for r in job.records) >= 5)
    job.pause()
    time.sleep(0.3)
    n = sum("loss" in r for r in job.records)
    time.sleep(0.5)
    assert sum("loss" in r for r in job.records) <= n + 1           # paused: at most the step in flight
    job.resume()
    assert wait_for(lambda: sum("loss" in r for r in job.records) > n + 2)
    job.stop()
    n = sum("loss" in r for r in job.records)
    assert wait_for(lambda: not job.active)
    assert sum("loss" in r for r in job.records) <= n + 1
    assert job.status == "stopped" and job.result                   # the model so far is kept


def test_time_limit_ends_the_run_and_says_so():
    rec = Recorder()
    out = pretrain.fit(TINY.replace(steps=100000, max_seconds=2), rec).result()
    assert "time limit" in out.message and out.status == "time limit"
    assert 0 < len(rec.losses()) < 100000 and rec.val()[-1] < rec.val()[0]   # stopped early, still learned
    lrs = [r["lr"] for r in rec.records if "lr" in r]
    assert lrs[-1] < 0.15 * max(lrs)      # the schedule ran on the clock: annealed to lr/10 by the limit


def test_saved_run_reloads_with_the_same_logits():
    rec = Recorder()
    path = pretrain.run(TINY.replace(steps=20), rec).run
    model, tok, info = runs.load_run(path)
    fresh = pretrain.fit(TINY.replace(steps=20), Recorder()).model
    ids = tok("Mia lives on the hill.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, fresh(ids).logits, atol=1e-5)
    assert info.stage == "pretrain" and info.config["steps"] == 20
    assert runs.read_metrics(path)
    from transformers import AutoModelForCausalLM
    assert AutoModelForCausalLM.from_pretrained(path) is not None
    import io
    import zipfile
    names = zipfile.ZipFile(io.BytesIO(runs.zip_run(path))).namelist()
    assert any(n.endswith("model.safetensors") for n in names) and any(n.endswith("tokenizer.json") for n in names)


def test_runner_queues_behind_the_limit_and_replays_finished_configs():
    runner = JobRunner(max_concurrent=1, max_per_owner=5)
    gate = __import__("threading").Event()

    def slow(cfg, reporter):
        gate.wait(10)
        return StageResult("/some/run")

    a = runner.submit("a", Task(slow, None), owner="x")
    b = runner.submit("b", Task(slow, None), owner="y")
    assert wait_for(lambda: a.status == "running")
    assert b.status == "queued" and b.queue_position == 1 and b.queue_eta > 0
    gate.set()
    assert wait_for(lambda: b.status == "done")
    assert runner.submit("a", Task(slow, None), owner="z") is a       # same config: replayed at once
    assert runner.submit("a", Task(slow, None), owner="z", replay=False) is not a


def test_runner_limits_jobs_per_person_and_stops_a_closed_session():
    runner = JobRunner(max_concurrent=2, max_per_owner=1)
    def waits(cfg, reporter):
        wait_for(reporter.should_stop, 30)
        return StageResult(status="stopped")

    job = runner.submit("k1", Task(waits, None), owner="tab")
    with pytest.raises(UserError, match="per person"):
        runner.submit("k2", Task(waits, None), owner="tab")
    assert runner.stop_owner("tab") == 1
    assert job.should_stop() and wait_for(lambda: job.status == "stopped")


def test_config_round_trips_through_url_params_and_reports_bad_values():
    cfg = PretrainConfig(lr=3e-4, objective="both", seed=7, bf16=False)
    back, problems = PretrainConfig.from_params(cfg.to_params())
    assert back == cfg and not problems
    back, problems = PretrainConfig.from_params({"lr": "abc", "objective": "rnn", "steps": "50", "x": "1"})
    assert back.steps == 50 and back.lr == PretrainConfig().lr and len(problems) == 2
    assert cfg.key() == PretrainConfig(lr=3e-4, objective="both", seed=7, bf16=False).key() != PretrainConfig().key()


@pytest.mark.parametrize("data,match", [
    (b"", "empty"), (b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", "binary"), (b"caf\xe9 au lait", "not UTF-8"),
])
def test_bad_uploads_get_clear_messages(data, match):
    with pytest.raises(UserError, match=match):
        textio.read_text(data, "file.txt")


def test_oversize_upload_and_too_short_text_are_refused(monkeypatch):
    monkeypatch.setattr(textio, "MAX_UPLOAD_BYTES", 100)
    with pytest.raises(UserError, match="limit"):
        textio.read_text(b"a" * 101)
    with pytest.raises(UserError, match="needs at least"):
        pretrain.prepare(TINY, "far too short for one context window")


def test_hub_name_offline_fails_at_once_and_local_data_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.time()
    with pytest.raises(UserError, match="Cannot reach"):
        corpus.hub_text("roneneldan/TinyStories")
    assert time.time() - t < 3
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "one story"}\n{"text": "two stories"}\n')
    assert corpus.hub_text(str(f)) == "one story\ntwo stories"
    with pytest.raises(UserError, match="no column"):
        corpus.hub_text(str(f), column="body")


def test_too_large_model_is_refused_before_training():
    with pytest.raises(UserError, match="too large"):
        pretrain.fit(TINY.replace(size="custom", n_layer=12, n_embd=512, n_head=8), Recorder())


def test_tokenizers_round_trip_and_load_as_transformers_tokenizers(tmp_path):
    from transformers import AutoTokenizer
    text = corpus.world_text()[:20000] + "Ünïcode ✓\n"
    for tok in (char_tokenizer(text), bpe_tokenizer(text, 300)):
        assert tok.decode(encode(tok, text[:500])) == text[:500]
        tok.save_pretrained(tmp_path / "t")
        again = AutoTokenizer.from_pretrained(tmp_path / "t")
        assert again.decode(again("Mia ✓")["input_ids"]) == "Mia ✓"
        assert again.mask_token == "<mask>" and again.pad_token == "<pad>"
    assert len(bpe_tokenizer(text, 300)) == 300
    assert len(encode(bpe_tokenizer(text, 400), text)) < len(text) / 1.5   # merges shorten the sequence


def test_cli_trains_and_prints_the_final_validation_loss():
    out = subprocess.run([sys.executable, "-m", "engine", "pretrain", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--objective" in out.stdout
    out = subprocess.run([sys.executable, "-m", "engine", "pretrain", "--size", "50k", "--steps", "40",
                          "--eval-every", "20", "--no-save"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    final = float(re.search(r"final validation loss: ([\d.]+)", out.stdout).group(1))
    assert final < math.log(43)
    out = subprocess.run([sys.executable, "-m", "engine", "pretrain", "--lr", "10", "--steps", "300", "--size", "50k",
                          "--no-save"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "lower the learning rate" in out.stderr
    # Every stage runs from the command line: SFT on the baked base, printing held-out accuracy.
    out = subprocess.run([sys.executable, "-m", "engine", "sft", "--families", "label", "--n-train", "60",
                          "--steps", "20", "--eval-every", "10", "--no-save"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "step     20  eval_loss" in out.stdout and "eval_accuracy" in out.stdout, out.stderr


def test_baked_base_run_exists_and_writes():
    base = [r for r in runs.list_runs("pretrain") if r.baked]
    assert base, "run `python -m engine bake`"
    model, tok, info = runs.load_run(base[0].path)
    assert info.summary["eval_loss"] < 1.0
    from engine.core.sampling import generate
    assert len(generate(model, tok, "Mia ", 40, temperature=0)) > 20
