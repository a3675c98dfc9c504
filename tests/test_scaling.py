"""Scaling engine: the fits, the counts, the plans, pruning and distillation."""
import math

import numpy as np
import pytest

from engine import runs
from engine import scaling as sc
from engine.config import UserError
from engine.models import build_model


class Recorder:
    """A job stand-in: keeps records and info, and can stop itself after a number of models."""

    def __init__(self, stop_after_models: int | None = None):
        self.records, self.info, self.message = [], {}, ""
        self.stop_after = stop_after_models

    def emit(self, r):
        self.records.append(r)

    def should_stop(self):
        return self.stop_after is not None and len(self.info.get("models", [])) >= self.stop_after

    def wait_if_paused(self):
        pass


def test_fit_recovers_the_exponent_of_a_known_power_law():
    n = np.geomspace(1e4, 1e7, 6)
    exact = 1.5 + 20 * n ** -0.3
    fit = sc.fit_power_law(n, exact)
    assert fit.floor and abs(fit.alpha - 0.3) < 1e-3 and abs(fit.E - 1.5) < 1e-2
    noisy = exact * np.exp(np.random.default_rng(1).normal(0, 0.005, len(n)))
    fit = sc.fit_power_law(n, noisy)
    assert abs(fit.alpha - 0.3) < 0.05
    assert fit.alpha_range[0] < 0.3 < fit.alpha_range[1] and fit.alpha_std > 0
    pure = sc.fit_power_law(n, 7 * n ** -0.076, floor=False)   # Kaplan's form: a straight line in log-log
    assert abs(pure.alpha - 0.076) < 1e-6 and pure.E == 0


def test_fit_on_too_few_points_says_so():
    with pytest.raises(UserError, match="at least 3"):
        sc.fit_power_law([1e4, 1e4, 1e5], [3.0, 3.0, 2.5], floor=False)   # the same size twice counts once
    with pytest.raises(UserError, match="at least 4"):
        sc.fit_power_law([1e4, 1e5, 1e6], [3.0, 2.5, 2.2])
    assert sc.fit_power_law([1e4, 1e5, 1e6], [3.0, 2.5, 2.2], floor=False).alpha > 0


def test_parabola_finds_the_bottom_of_an_isoflop_curve():
    n = np.geomspace(1e4, 1e6, 5)
    best = sc.parabola_min(n, 0.1 * (np.log(n) - math.log(1e5)) ** 2 + 2.0)
    assert best["inside"] and abs(best["n_opt"] / 1e5 - 1) < 1e-6 and abs(best["loss"] - 2.0) < 1e-9
    assert sc.parabola_min(n, -np.log(n)) is None          # no U, no minimum


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_parameter_counts_match_the_built_models(arch):
    for L, d in [(1, 16), (2, 48), (5, 176)]:
        model = build_model("clm", 107, L, d // sc.HEAD_DIM, d, 64, 0, 0, 3, arch=arch)
        counts = sc.param_counts(arch, L, d, 107, 64)
        assert counts["total"] == model.num_parameters()
        embed = model.get_input_embeddings().weight.numel() + (64 * d if arch == "gpt2" else 0)
        assert counts["non_embedding"] == counts["total"] - embed
        assert abs(counts["non_embedding"] / counts["estimate"] - 1) < 0.1   # 12·L·d² is close


def test_ladder_spans_the_range_and_bad_sizes_are_refused():
    plan = sc.sweep_plan(sc.SweepConfig(), 107)
    assert len(plan) == 5 and plan[0].n < 30_000 and 1.5e6 < plan[-1].n < 2.5e6
    assert all(a.n < b.n for a, b in zip(plan, plan[1:]))
    assert plan[0].flops == 6 * plan[0].n * plan[0].tokens
    for bad in (dict(n_models=1), dict(min_params=50_000, max_params=50_000)):
        with pytest.raises(UserError, match="collapse to one point"):
            sc.sweep_plan(sc.SweepConfig(**bad), 107)
    with pytest.raises(UserError, match="at least"):
        sc.sweep_plan(sc.SweepConfig(tokens=5_000), 107)


def test_a_budget_too_small_to_train_any_model_is_refused():
    with pytest.raises(UserError, match="too small to train any"):
        sc.iso_plan(sc.IsoConfig(budgets="1e6"), 107)
    plan, notes = sc.iso_plan(sc.IsoConfig(budgets="1e6,1e11"), 107)
    assert plan and all(c == 1e11 for c, _ in plan) and "too small" in notes[0]
    for c, s in plan:
        assert abs(6 * s.n * s.tokens / c - 1) < 0.05    # each size gets the tokens its budget allows
    with pytest.raises(UserError, match="not numbers"):
        sc.IsoConfig(budgets="lots").budget_list()


def test_compute_optimal_calculators():
    c = 5.76e23
    chin = sc.chinchilla_optimal(c)
    assert abs(6 * chin["n"] * chin["d"] / c - 1) < 1e-9
    law = lambda n: 1.69 + 406.4 / n ** 0.34 + 410.7 / (c / (6 * n)) ** 0.28  # noqa: E731
    assert law(chin["n"]) < law(chin["n"] * 1.2) and law(chin["n"]) < law(chin["n"] / 1.2)
    assert abs(sc.kaplan_optimal(sc.PF_DAY)["n"] - 1.3e9) < 1   # Kaplan 2020, figure 14
    ratio = sc.kaplan_optimal(10 * c)["n"] / sc.kaplan_optimal(c)["n"]
    assert abs(ratio - 10 ** 0.73) < 1e-9
    with pytest.raises(UserError):
        sc.chinchilla_optimal(0)


def test_config_parts_round_trip_through_one_url():
    cfg = sc.ScalingConfig(n_models=4, budgets="1e11", st_steps=50)
    back, problems = sc.ScalingConfig.from_params(cfg.to_params())
    assert back == cfg and not problems
    assert cfg.part(sc.SweepConfig).n_models == 4 and cfg.part(sc.DistillConfig).st_steps == 50
    # a section's job key ignores the other sections' settings, so their changes do not break replay
    assert cfg.part(sc.SweepConfig).key() == cfg.replace(st_steps=60).part(sc.SweepConfig).key()


def test_pruning_reaches_the_requested_sparsity():
    model, corpus, _ = sc.load_base("pretrain-base-gpt")
    before = [p.detach().clone() for p in model.parameters()]
    for method in ("global", "per-layer"):
        for s in (0.5, 0.9):
            assert abs(sc.sparsity_of(sc.pruned(model, s, method)) - s) < 1e-3
    assert all((a == b).all() for a, b in zip(before, model.parameters()))   # pruning works on a copy
    windows = corpus.quick[:16]
    assert sc.mean_loss(sc.pruned(model, 0.9, "global"), windows) > sc.mean_loss(model, windows)


def test_distilled_student_beats_the_one_trained_from_scratch(runs_dir):
    cfg = sc.DistillConfig(teacher_steps=150, st_steps=80)
    job = Recorder()
    sc.run_distill(cfg, job, owner="me")
    got = {s["role"]: s["val_loss"] for s in job.info["students"]}
    assert got["distilled"] < got["from scratch"] - 0.02, got
    assert job.info["student_params"] < job.info["teacher_params"] / 5
    assert sc.saved_teacher(cfg, "me")   # the teacher was saved and will be reused


def test_a_sweep_stopped_half_way_keeps_and_saves_what_finished(runs_dir):
    cfg = sc.SweepConfig(n_models=4, min_params=3_000, max_params=60_000, tokens=20_480)
    job = Recorder(stop_after_models=3)
    path = sc.run_sweep(cfg, job, owner="me")
    done = job.info["models"]
    assert len(done) == 3 and all(m["status"] == "done" and m["val_loss"] < math.log(107) for m in done)
    assert sc.fit_power_law([m["N (non-embedding)"] for m in done], [m["val_loss"] for m in done], floor=False)
    steps = [r["step"] for r in job.records if "loss" in r]
    assert steps == sorted(steps)                       # one job-wide step count across models
    info = runs.read_info(path)
    assert info.config["n_embd"] == done[-1]["width"] and info.summary["from"] == "scaling sweep"
