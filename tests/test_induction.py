"""The "watch heads form" stage: its data, its scores, and an induction head forming for real."""
import numpy as np
import pytest
import torch

from engine.attention.induction import InductionConfig, head_grids, phase_change, repeated_batch, run, score_heads
from engine.core import runs
from engine.core.config import UserError
from engine.core.report import Recorder


def test_batches_repeat_their_first_half_without_repeats_inside_it():
    symbols = torch.arange(4, 36)
    x = repeated_batch(symbols, 8, 10, torch.Generator().manual_seed(0))
    assert x.shape == (8, 20) and torch.equal(x[:, :10], x[:, 10:])
    assert all(len(set(row[:10].tolist())) == 10 for row in x)
    assert set(x.unique().tolist()) <= set(symbols.tolist())


def test_head_grids_find_planted_heads():
    T, half = 12, 6
    attn = torch.full((2, 3, T, T), 1.0).tril()
    attn /= attn.sum(-1, keepdim=True)
    q = torch.arange(half, T)
    attn[1, 2, q] = 0
    attn[1, 2, q, q - half + 1] = 1          # layer 1 head 2: from each repeated token to its first copy's successor
    attn[0, 1] = torch.eye(T).roll(-1, dims=1)
    attn[0, 1, 0] = torch.eye(T)[0]           # layer 0 head 1: previous token
    induction, previous = head_grids(attn, half)
    assert induction[1, 2] == pytest.approx(1.0) and np.delete(induction.ravel(), 5).max() < 0.3
    assert previous[0, 1] == pytest.approx(1.0) and np.delete(previous.ravel(), 1).max() < 0.6


def test_a_half_longer_than_the_vocabulary_is_refused():
    with pytest.raises(UserError, match="distinct symbols"):
        InductionConfig(seq_len=64, vocab=16).check()


def test_induction_score_rises_during_training(runs_dir):
    """Fixed seed, a small and quick setting (the head forms near step 600 instead of 1000): the
    loss on the repeat falls far below the first half's, the best head's induction score rises,
    and the saved model scores as an induction head on a repeat of another length too (so it
    matches tokens, not a fixed offset)."""
    torch.set_num_threads(1)
    cfg = InductionConfig(seq_len=24, vocab=16, steps=900, eval_every=100, max_seconds=300)
    job = Recorder()
    path = run(cfg, job, owner="test").run
    ev = [r for r in job.records if "induction_score" in r]
    start, end = ev[0], ev[-1]
    assert start["induction_score"] < 0.1
    assert end["induction_score"] > 0.3
    assert end["loss_repeat"] < 0.5 < end["loss_first_half"] - 1.5
    assert len(job.samples) == len(ev) and job.samples[-1]["attn"].shape == (2, 4, 24, 24)
    model, tok, info = runs.load_run(path)
    assert info.stage == "induction" and info.summary["induction_score"] == end["induction_score"]
    assert score_heads(model, tok, cfg.vocab, half=9, seed=7)[0].max() > 0.3


def test_phase_change_finds_the_rise_and_waits_for_one():
    def ev(step, score, loss):
        return {"step": step, "induction_score": score, "loss_repeat": loss}
    flat = [ev(s, 0.05, 2.7) for s in range(0, 300, 50)]
    assert phase_change(flat) is None                                  # no rise yet: nothing to mark
    rise = flat + [ev(300, 0.1, 2.0), ev(350, 0.4, 0.5), ev(400, 0.6, 0.1), {"step": 400, "loss": 0.3}]
    p = phase_change(rise)
    assert (p["step"], p["plateau_until"]) == (350, 300)               # past halfway (0.325) at 350; 0.1 < 0.105
    assert p["start"] == 0.05 and p["end"] == 0.6 and p["loss_repeat_end"] == 0.1


def test_the_defaults_are_the_quick_demo_and_the_demo_records_them():
    cfg = InductionConfig()
    assert list(InductionConfig.PRESETS) == ["quick demo", "standard", "thorough"]
    assert all(getattr(cfg, k) == v for k, v in InductionConfig.PRESETS["quick demo"].items())
    assert cfg.steps <= 1000 and cfg.half <= cfg.vocab      # 1,000 steps: about 13 s of CPU
    from engine import demos
    registered = demos._DEMOS["induction-forms"].config
    assert registered.replace(max_seconds=cfg.max_seconds) == cfg          # the quick demo, bounded by steps
