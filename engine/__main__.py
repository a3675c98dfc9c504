"""Command line: `python -m engine pretrain --steps 300`, `python -m engine sft`, `... rlhf`,
`... cai`, `python -m engine bake`. Every stage prints its evaluations as they come."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import typing

from .config import UserError
from .loop import Recorder


def _stages() -> dict:
    """name -> (config class, run(cfg, reporter, save) -> saved folder or model). Imported here, not at
    the top, so `--help` stays quick."""
    from . import cai, rlhf, sft
    from .pretrain import PretrainConfig

    def run_rlhf(cfg, rep, save):   # the page's two steps: a reward model (PPO needs it), then the policy
        rlhf.run_reward(cfg, rep)
        return rlhf.run_policy(cfg, rep)

    return {"pretrain": (PretrainConfig, None),
            "sft": (sft.SFTConfig, lambda cfg, rep, save: sft.run(cfg, rep, save=save)),
            "rlhf": (rlhf.RLHFConfig, run_rlhf),   # saved: PPO needs the reward model on disk
            "cai": (cai.CAIConfig, lambda cfg, rep, save: cai.run(cfg, rep))}


class ConsoleReporter(Recorder):
    """Prints the curve and the samples as they come."""

    def emit(self, r: dict) -> None:
        super().emit(r)
        evals = {k: v for k, v in r.items() if k.startswith(("val_", "eval_")) and isinstance(v, float)}
        if "val_loss" in r:
            last = next((x["loss"] for x in reversed(self.records) if "loss" in x), float("nan"))
            print(f"step {r['step']:>6}  train {last:.4f}  val {r['val_loss']:.4f}  ({r['elapsed']:.1f}s)", flush=True)
        elif evals:
            shown = "  ".join(f"{k} {v:.3f}" for k, v in list(evals.items())[:6])
            print(f"step {r['step']:>6}  {shown}  ({r.get('elapsed', 0):.1f}s)", flush=True)

    def add_sample(self, s: dict) -> None:
        super().add_sample(s)
        print(f"  sample @ {s['step']}: {s.get('prompt', '')!r} -> {s.get('text', s.get('masked'))!r}", flush=True)


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
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a busy 2-core machine, 2 threads ran up to 100x slower)")
    args = parser.parse_args(argv)
    import torch
    import transformers
    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()   # the evaluations are the progress shown here
    if args.command == "bake":
        from .bake import bake
        bake(args.names)
        return 0
    cls, run = stages[args.command]
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}
    try:
        if args.command == "pretrain":
            return _pretrain(cls, values, args)
        rep = ConsoleReporter()
        cfg = cls(**values)
        print(f"== {args.command}: {cfg.to_params()}")
        out = run(cfg, rep, not getattr(args, "no_save", False))
        if rep.message:
            print(rep.message)
        if isinstance(out, str):
            print(f"saved run: {out}")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _pretrain(cls, values: dict, args) -> int:
    from .pretrain import run
    upload = None
    if args.text_file:
        from .corpus import read_upload
        with open(args.text_file, "rb") as fh:
            upload, values["corpus"] = read_upload(fh.read(), args.text_file), "upload"
    for one in cls(**values).objectives():
        rep = ConsoleReporter()
        print(f"== pretrain {one.objective}: {one.to_params()}")
        out = run(one, rep, upload=upload, save=not args.no_save)
        final = next((r["val_loss"] for r in reversed(rep.records) if "val_loss" in r), None)
        print(f"final validation loss: {final:.4f}  ({rep.info.get('params', 0):,} parameters)")
        if rep.message:
            print(rep.message)
        if isinstance(out, str):
            print(f"saved run: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
