"""Model scaling page speed and results. `python bench/bench_scaling.py [--all]`

Runs the page's default jobs through the job runner (one thread per job, as the app does) and
prints wall time against the targets, with the load average, since the machine may be shared:
1. the default size sweep (5 GPT-2 models, 25k to 1.9M parameters, 307k tokens each):
   target under 180 s; prints each model's final loss and the fitted exponent with its uncertainty;
2. the distillation comparison (a 200k teacher trained first, then two 31k students): target under 90 s;
3. with --all, also the isoFLOP and overfitting defaults (no targets: for the record).
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# A fresh run store: the saved teacher must not be reused, and benchmark runs stay out of the app's lists.
os.environ["LLMX_RUNS_DIR"] = tempfile.mkdtemp(prefix="bench-scaling-")

from engine.core.jobs import JobRunner  # noqa: E402
from engine.core.report import Task  # noqa: E402
from engine.scaling import config, distill, experiments, fits, plans, training  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def timed(runner: JobRunner, name: str, task: Task, total_steps: int):
    t0 = time.perf_counter()
    job = runner.submit(name, task, owner="bench", total_steps=total_steps, stage="scaling", replay=False)
    while job.active:
        time.sleep(0.1)
    return job, time.perf_counter() - t0


def sweep(runner: JobRunner) -> None:
    cfg = config.SweepConfig()
    corpus = training.load_corpus(cfg.corpus, cfg.block_size)   # the page tokenizes before the click, too
    plan = plans.sweep_plan(cfg, len(corpus.tokenizer))
    print(f"1. default size sweep: {len(plan)} models, {plan[0].tokens:,} tokens each, {cfg.corpus} (load {load()})")
    job, secs = timed(runner, "sweep", Task(experiments.run_sweep, cfg), sum(s.steps for s in plan))
    for m in job.info.get("models", []):
        print(f"   N = {m['N (non-embedding)']:>9,}  ({m['layers']} layers, width {m['width']:>3})  "
              f"final val loss {m['eval_loss']:.3f}  {m['seconds']:5.1f} s")
    done = [m for m in job.info.get("models", []) if m["status"] == "done"]
    n, loss = [m["N (non-embedding)"] for m in done], [m["eval_loss"] for m in done]
    for floor in (True, False):
        f = fits.fit_power_law(n, loss, floor=floor)
        print(f"   fit {'E + A/N^alpha' if floor else 'A/N^alpha    '}: alpha = {f.alpha:.3f} ± {f.alpha_std:.3f} "
              f"(68%: {f.alpha_range[0]:.3f} to {f.alpha_range[1]:.3f}), E = {f.E:.2f}, rms {f.rms:.4f}")
    print(f"   {job.status} in {secs:.1f} s (target < 180 s) {job.message} (load {load()})")


def distillation(runner: JobRunner) -> None:
    cfg = config.DistillConfig()
    print(f"2. distillation: teacher {cfg.teacher_steps} steps, students {cfg.st_steps} steps each (load {load()})")
    job, secs = timed(runner, "distill", Task(distill.run_distill, cfg, {"owner": "bench"}),
                      cfg.teacher_steps + 2 * cfg.st_steps)
    got = {s["role"]: s for s in job.info.get("students", [])}
    for role, s in got.items():
        print(f"   {role:>12}: val loss {s['eval_loss']:.3f} in {s['seconds']:.1f} s")
    print(f"   teacher val loss {job.info.get('teacher_eval_loss', float('nan')):.3f}, "
          f"{job.info.get('teacher_params', 0):,} vs {job.info.get('student_params', 0):,} parameters")
    print(f"   {job.status} in {secs:.1f} s (target < 90 s) {job.message} (load {load()})")


def others(runner: JobRunner) -> None:
    iso = config.IsoConfig()
    plan, _ = plans.iso_plan(iso, 107)
    job, secs = timed(runner, "iso", Task(experiments.run_isoflop, iso), sum(s.steps for _, s in plan))
    print(f"3. isoFLOP default ({iso.budgets}): {job.status} in {secs:.1f} s {job.message}")
    for c in iso.budget_list():
        runs = [r for r in job.info.get("runs", []) if r["budget"] == c and r["status"] == "done"]
        best = fits.parabola_min([r["N (non-embedding)"] for r in runs], [r["eval_loss"] for r in runs])
        bottom = (f"bottom of the U at N = {best['n_opt']:,.0f}, D/N = {c / 6 / best['n_opt'] ** 2:.0f}"
                  if best and best["inside"] else "no U inside the sizes tried")
        print(f"   C = {c:.0e}: " + ", ".join(f"{r['model']} {r['eval_loss']:.3f}" for r in runs) + f"; {bottom}")
    over = config.OverfitConfig()
    job, secs = timed(runner, "overfit", Task(experiments.run_overfit, over), 1)
    print(f"4. overfitting default: {job.status} in {secs:.1f} s")
    for m in job.info.get("models", []):
        ev = [r["eval_loss"] for r in job.records if r.get("role") == m["role"] and "eval_loss" in r]
        print(f"   {m['role']} {m['model']}: best val {min(ev):.3f}, final val {ev[-1]:.3f}, "
              f"final train {m['train_eval_loss']:.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--all", action="store_true", help="also time the isoFLOP and overfitting defaults")
    a = ap.parse_args()
    print(f"{os.cpu_count()} cores; load average {load()} (1, 5, 15 min): a shared machine makes these noisy\n")
    runner = JobRunner(measure_energy=False)
    sweep(runner)
    distillation(runner)
    if a.all:
        others(runner)


if __name__ == "__main__":
    main()
