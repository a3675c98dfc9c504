"""Command line: `python -m engine pretrain --steps 300`, `python -m engine sft`, `... rlhf`,
`... cai`, `python -m engine bake`. Every stage prints its evaluations as they come."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing

from engine.core.config import UserError
from engine.core.report import Recorder, StageResult, Task


def _stages() -> dict:
    """name -> (config class, run(cfg, reporter) -> StageResult). Imported here, not at the top,
    so `--help` stays quick."""
    from engine import pretraining, sft
    from engine.attention import induction  # noqa: F401  (these register their pages' demos)
    from engine.cai import run as cai
    from engine.cai.config import CAIConfig
    from engine.carbon import levers  # noqa: F401
    from engine.data import compare  # noqa: F401
    from engine.rlhf import recipe
    from engine.rlhf.config import RLHFConfig
    from engine.scaling import experiments  # noqa: F401

    def run_rlhf(cfg, rep):   # the page's two steps: a reward model (PPO needs it on disk), then the policy
        recipe.run_reward(cfg, rep)
        return recipe.run_policy(cfg, rep)

    return {"pretrain": (pretraining.PretrainConfig, pretraining.run), "sft": (sft.SFTConfig, sft.run),
            "rlhf": (RLHFConfig, run_rlhf), "cai": (CAIConfig, cai.run)}


class ConsoleReporter(Recorder):
    """Prints the curve, the samples and what the stage says, as they come."""

    def emit(self, r: dict) -> None:
        super().emit(r)
        evals = {k: v for k, v in r.items() if k.startswith(("val_", "eval_")) and isinstance(v, float)}
        if evals and "loss" not in r:   # an evaluation: its metrics, and the last training loss before it
            shown = "  ".join(f"{k} {v:.4f}" for k, v in list(evals.items())[:6])
            last = next((x["loss"] for x in reversed(self.records) if "loss" in x), None)
            train = f"  train {last:.4f}" if last is not None else ""
            print(f"step {r['step']:>6}  {shown}{train}  ({r.get('elapsed', 0):.1f}s)", flush=True)

    def add_sample(self, s: dict) -> None:
        super().add_sample(s)
        print(f"  sample @ {s['step']}: {s.get('prompt', '')!r} -> {s.get('text', s.get('masked'))!r}", flush=True)

    def say(self, message: str) -> None:
        super().say(message)
        if message:
            print(f"... {message}", flush=True)


def add_config_args(parser: argparse.ArgumentParser, cls) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        kw = {"default": f.default, "help": f"{f.metadata.get('help', '')} (default: {f.default})"}
        if "choices" in f.metadata:
            kw["choices"] = f.metadata["choices"]
        if tp is bool:
            kw["type"] = lambda s: s.lower() in ("1", "true", "yes", "on")
        else:
            kw["type"] = tp
        parser.add_argument(f"--{f.name.replace('_', '-')}", **kw)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    stages = _stages()
    for name, (cls, _) in stages.items():
        p = sub.add_parser(name, help=(cls.__doc__ or "").split("\n")[0])
        add_config_args(p, cls)
        if name == "pretrain":
            p.add_argument("--text-file", help="train on this UTF-8 file (sets --corpus upload)")
        if name in ("pretrain", "sft"):   # RLHF and CAI save the runs their later steps start from
            p.add_argument("--no-save", action="store_true", help="do not save the run")
    bake = sub.add_parser("bake", help="rebuild the default runs shipped in assets/runs")
    bake.add_argument("names", nargs="*", help="only these runs (default: all, in lineage order)")
    demo = sub.add_parser("demo", help="record the pages' precomputed demos into assets/demos")
    demo.add_argument("names", nargs="*", help="only these demos (default: all)")
    parser.add_argument("--ray", metavar="ADDRESS", default=os.environ.get("LLMX_RAY_ADDRESS", ""),
                        help="run the job on Ray, as the app does: local, auto or ray://host:10001 "
                             "(default: $LLMX_RAY_ADDRESS; empty: in this process)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a busy 2-core machine, 2 threads ran up to 100x slower)")
    parser.set_defaults(no_save=False)
    args = parser.parse_args(argv)
    import torch
    import transformers
    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()   # the evaluations are the progress shown here
    if args.command == "bake":
        from engine.bake import bake
        bake(args.names, lambda name: ConsoleReporter())
        return 0
    if args.command == "demo":
        from engine import demos
        for name in args.names or demos.names():
            print(f"== demo {name}")
            print(f"recorded {demos.record(name, ConsoleReporter())}")
        return 0
    cls, run = stages[args.command]
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
    try:
        if args.command == "pretrain":
            return _pretrain(cls, values, args)
        cfg = cls(**values)
        print(f"== {args.command}: {cfg.to_params()}")
        if args.no_save:
            from engine import sft
            _ended(sft.fit(cfg, ConsoleReporter()).result())
        else:
            _ended(_run(run, cfg, ConsoleReporter(), args))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _run(run, cfg, reporter, args, **inputs) -> StageResult:
    """The stage in this process, or as one job on Ray with --ray (engine.core.ray_backend)."""
    if not args.ray:
        return run(cfg, reporter, **inputs)
    from engine.core.ray_backend import run_on_ray
    return run_on_ray(Task(run, cfg, inputs), reporter, args.ray)


def _ended(out: StageResult) -> None:
    if out.message:
        print(out.message)
    if out.run:
        print(f"saved run: {out.run}")


def _pretrain(cls, values: dict, args) -> int:
    from engine import pretraining
    upload = None
    if args.text_file:
        from engine.core.textio import read_text
        with open(args.text_file, "rb") as fh:
            upload, values["corpus"] = read_text(fh.read(), args.text_file), "upload"
    for one in cls(**values).objectives():
        rep = ConsoleReporter()
        print(f"== pretrain {one.objective}: {one.to_params()}")
        if args.no_save:
            trained = pretraining.fit(one, rep, upload=upload)
            out = trained.result()
        else:
            out = _run(pretraining.run, one, rep, args, upload=upload)
        print(f"final validation loss: {out.summary['eval_loss']:.4f}  ({out.summary['params']:,} parameters)")
        _ended(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
