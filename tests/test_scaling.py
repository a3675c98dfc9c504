"""Scaling engine: the fits, the counts, the plans, pruning and distillation."""
import math

import numpy as np
import pytest

from engine.core import runs
from engine.core.config import UserError
from engine.core.models import build_model
from engine.core.report import Recorder
from engine.scaling import config, distill, experiments, fits, laws, plans, prune, training


def stopping_after(models: int) -> Recorder:
    """A reporter that asks to stop once `models` models have finished."""
    rec = Recorder(stop=lambda: len(rec.info.get("models", [])) >= models)
    return rec


def test_fit_recovers_the_exponent_of_a_known_power_law():
    n = np.geomspace(1e4, 1e7, 6)
    exact = 1.5 + 20 * n ** -0.3
    fit = fits.fit_power_law(n, exact)
    assert fit.floor and abs(fit.alpha - 0.3) < 1e-3 and abs(fit.E - 1.5) < 1e-2
    noisy = exact * np.exp(np.random.default_rng(1).normal(0, 0.005, len(n)))
    fit = fits.fit_power_law(n, noisy)
    assert abs(fit.alpha - 0.3) < 0.05
    assert fit.alpha_range[0] < 0.3 < fit.alpha_range[1] and fit.alpha_std > 0
    pure = fits.fit_power_law(n, 7 * n ** -0.076, floor=False)   # Kaplan's form: a straight line in log-log
    assert abs(pure.alpha - 0.076) < 1e-6 and pure.E == 0


def test_fit_on_too_few_points_says_so():
    with pytest.raises(UserError, match="at least 3"):
        fits.fit_power_law([1e4, 1e4, 1e5], [3.0, 3.0, 2.5], floor=False)   # the same size twice counts once
    with pytest.raises(UserError, match="at least 4"):
        fits.fit_power_law([1e4, 1e5, 1e6], [3.0, 2.5, 2.2])
    assert fits.fit_power_law([1e4, 1e5, 1e6], [3.0, 2.5, 2.2], floor=False).alpha > 0


def test_parabola_finds_the_bottom_of_an_isoflop_curve():
    n = np.geomspace(1e4, 1e6, 5)
    best = fits.parabola_min(n, 0.1 * (np.log(n) - math.log(1e5)) ** 2 + 2.0)
    assert best["inside"] and abs(best["n_opt"] / 1e5 - 1) < 1e-6 and abs(best["loss"] - 2.0) < 1e-9
    assert fits.parabola_min(n, -np.log(n)) is None          # no U, no minimum


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_parameter_counts_match_the_built_models(arch):
    for L, d in [(1, 16), (2, 48), (5, 176)]:
        model = build_model("clm", 107, L, d // plans.HEAD_DIM, d, 64, 0, 0, 3, arch=arch)
        counts = laws.param_counts(arch, L, d, 107, 64)
        assert counts["total"] == model.num_parameters()
        embed = model.get_input_embeddings().weight.numel() + (64 * d if arch == "gpt2" else 0)
        assert counts["non_embedding"] == counts["total"] - embed
        assert abs(counts["non_embedding"] / counts["estimate"] - 1) < 0.1   # 12·L·d² is close


def test_ladder_spans_the_range_and_bad_sizes_are_refused():
    plan = plans.sweep_plan(config.SweepConfig(n_models=5, max_params=2_000_000), 107)
    assert len(plan) == 5 and plan[0].n < 30_000 and 1.5e6 < plan[-1].n < 2.5e6
    quick = plans.sweep_plan(config.SweepConfig(), 107)              # the default is the quick demo: four sizes
    assert len(quick) == 4 and quick[0].n < 30_000 and 3e5 < quick[-1].n < 6e5
    assert all(a.n < b.n for a, b in zip(plan, plan[1:]))
    assert plan[0].flops == 6 * plan[0].n * plan[0].tokens
    for bad in (dict(n_models=1), dict(min_params=50_000, max_params=50_000)):
        with pytest.raises(UserError, match="collapse to one point"):
            plans.sweep_plan(config.SweepConfig(**bad), 107)
    with pytest.raises(UserError, match="at least"):
        plans.sweep_plan(config.SweepConfig(tokens=5_000), 107)


def test_a_budget_too_small_to_train_any_model_is_refused():
    with pytest.raises(UserError, match="too small to train any"):
        plans.iso_plan(config.IsoConfig(budgets="1e6"), 107)
    plan, notes = plans.iso_plan(config.IsoConfig(budgets="1e6,1e11"), 107)
    assert plan and all(c == 1e11 for c, _ in plan) and "too small" in notes[0]
    for c, s in plan:
        assert abs(6 * s.n * s.tokens / c - 1) < 0.05    # each size gets the tokens its budget allows
    with pytest.raises(UserError, match="not numbers"):
        config.IsoConfig(budgets="lots").budget_list()


def test_compute_optimal_calculators():
    c = 5.76e23
    chin = laws.chinchilla_optimal(c)
    assert abs(6 * chin["n"] * chin["d"] / c - 1) < 1e-9
    law = lambda n: 1.69 + 406.4 / n ** 0.34 + 410.7 / (c / (6 * n)) ** 0.28  # noqa: E731
    assert law(chin["n"]) < law(chin["n"] * 1.2) and law(chin["n"]) < law(chin["n"] / 1.2)
    assert abs(laws.kaplan_optimal(laws.PF_DAY)["n"] - 1.3e9) < 1   # Kaplan 2020, figure 14
    ratio = laws.kaplan_optimal(10 * c)["n"] / laws.kaplan_optimal(c)["n"]
    assert abs(ratio - 10 ** 0.73) < 1e-9
    with pytest.raises(UserError):
        laws.chinchilla_optimal(0)


def test_config_parts_round_trip_through_one_url():
    cfg = config.ScalingConfig(n_models=4, budgets="1e11", st_steps=50)
    back, problems = config.ScalingConfig.from_params(cfg.to_params())
    assert back == cfg and not problems
    assert cfg.part(config.SweepConfig).n_models == 4 and cfg.part(config.DistillConfig).st_steps == 50
    # a section's job key ignores the other sections' settings, so their changes do not break replay
    assert cfg.part(config.SweepConfig).key() == cfg.replace(st_steps=60).part(config.SweepConfig).key()


def test_pruning_reaches_the_requested_sparsity():
    model, corpus, _ = prune.load_base("pretrain-base-gpt")
    before = [p.detach().clone() for p in model.parameters()]
    for method in ("global", "per-layer"):
        for s in (0.5, 0.9):
            assert abs(prune.sparsity_of(prune.pruned(model, s, method)) - s) < 1e-3
    assert all((a == b).all() for a, b in zip(before, model.parameters()))   # pruning works on a copy
    windows = corpus.quick[:16]
    assert training.mean_loss(prune.pruned(model, 0.9, "global"), windows) > training.mean_loss(model, windows)


def test_distilled_student_beats_the_one_trained_from_scratch(runs_dir):
    cfg = config.DistillConfig(teacher_steps=150, st_steps=80)
    job = Recorder()
    distill.run_distill(cfg, job, owner="me")
    got = {s["role"]: s["eval_loss"] for s in job.info["students"]}
    assert got["distilled"] < got["from scratch"] - 0.02, got
    assert job.info["student_params"] < job.info["teacher_params"] / 5
    assert distill.saved_teacher(cfg, "me")   # the teacher was saved and will be reused


def test_a_sweep_stopped_half_way_keeps_and_saves_what_finished(runs_dir):
    cfg = config.SweepConfig(n_models=4, min_params=3_000, max_params=60_000, tokens=20_480)
    job = stopping_after(3)
    path = experiments.run_sweep(cfg, job, owner="me").run
    done = job.info["models"]
    assert len(done) == 3 and all(m["status"] == "done" and m["eval_loss"] < math.log(107) for m in done)
    assert fits.fit_power_law([m["N (non-embedding)"] for m in done], [m["eval_loss"] for m in done], floor=False)
    steps = [r["step"] for r in job.records if "loss" in r]
    assert steps == sorted(steps)                       # one job-wide step count across models
    info = runs.read_info(path)
    assert info.config["n_embd"] == done[-1]["width"] and info.summary["from"] == "scaling sweep"
