"""The same experiment at real scale (issue 18, part 3). For a training page's config: the command
that reruns it here, and a short script that runs it with the standard tool (transformers'
`Trainer` for pretraining; TRL's trainers for SFT, RLHF and constitutional AI), the page's settings
mapped onto the tool's names and the model and the data left as the two constants to change.

`for_page(cfg) -> RealScale`. tests/test_realscale.py parses every command with the CLI's own flags
and runs the scripts for a few steps on the baked runs, so the mapping cannot rot silently.
"""
from __future__ import annotations

import dataclasses
import json
import shlex
import textwrap

from engine.core.loop import LoopSettings

STAGES = {"PretrainConfig": "pretrain", "SFTConfig": "sft", "RLHFConfig": "rlhf", "CAIConfig": "cai"}
_LOOP = LoopSettings(steps=1, lr=1.0)   # the one training loop's optimiser defaults, which every stage uses
_UNMAPPED = "\0unmapped\0"   # where the list goes (a literal in a script never holds a NUL: json.dumps escapes it)


@dataclasses.dataclass(frozen=True)
class RealScale:
    command: str            # python -m engine <stage> --flag value ...: the settings off their defaults
    tool: str               # what the script runs, e.g. "TRL DPOTrainer"
    script: str | None      # a runnable Python script; MODEL and DATA at its top are the things to change
    unmapped: list[str]     # "setting: why", for each of the page's settings with no counterpart in the tool


def for_page(cfg) -> RealScale:
    """The command line and the real-scale script for a PretrainConfig, SFTConfig, RLHFConfig or CAIConfig."""
    build = {"pretrain": _pretrain, "sft": _sft, "rlhf": _rlhf, "cai": _cai}[_stage(cfg)]
    tool, script, unmapped = build(cfg)
    unmapped = unmapped + [f"max_seconds: {NO_TIME_LIMIT}"]
    header = "\n".join(textwrap.fill(u, 116, initial_indent="# - ", subsequent_indent="#   ",
                                     break_on_hyphens=False) for u in unmapped)
    return RealScale(command(cfg), tool, script.replace(_UNMAPPED, header, 1), unmapped)


def command(cfg) -> str:
    """`python -m engine <stage>` with a flag for each setting that differs from the config's default
    (engine/__main__.py: the field's name with dashes; booleans as 1 or 0), quoted for a POSIX shell."""
    parts = ["python", "-m", "engine", _stage(cfg)]
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value == f.default and type(value) is type(f.default):
            continue
        text = ("1" if value else "0") if isinstance(value, bool) else repr(value) if isinstance(value, float) \
            else str(value)
        flag = "--" + f.name.replace("_", "-")
        # "--seed=-1": argparse would take a value starting with a dash for another option
        parts += [f"{flag}={text}"] if text.startswith("-") else [flag, text]
    if _stage(cfg) == "pretrain" and cfg.corpus == "upload":
        parts += ["--text-file", "your_text.txt"]   # the command line reads the text from a file
    return " ".join(shlex.quote(p) for p in parts)


def _stage(cfg) -> str:
    try:
        return STAGES[type(cfg).__name__]
    except KeyError:
        raise TypeError(f"no real-scale version of {type(cfg).__name__}: only of {', '.join(STAGES)}") from None


NO_TIME_LIMIT = ("TrainingArguments has no time limit: max_steps ends the run, and the learning-rate schedule "
                 "follows the steps alone (the page's anneals by the time limit when that comes first)")
HELD_OUT = "validation data: the script keeps back a random tenth of DATA's rows (test_size=0.1); "


class Code(str):
    """A Python expression written as it is (a name such as SEED), not as a string literal."""


def _lit(v) -> str:
    if isinstance(v, Code):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)   # a Python literal too, in double quotes like the rest of the script
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_lit(k)}: {_lit(x)}" for k, x in v.items()) + "}"
    return repr(v)


def _kwargs(rows: list[tuple]) -> str:
    """Keyword arguments one a line, each with a comment naming the page's setting it comes from."""
    out = []
    for name, value, *note in rows:
        text = f"    {name}={_lit(value)},"
        out.append(f"{text:<52}# {note[0]}" if note and note[0] else text)
    return "\n".join(out)


def _same(name: str) -> str:
    return name


def _loop(lr, steps, batch, warmup, eval_every, bf16, page=_same) -> list:
    """TrainingArguments for the page's one training loop (engine/core/loop.py): AdamW, a warmup, then
    a cosine decay to a tenth of the peak. Every Trainer of transformers and TRL takes these names.
    page(name): what the comment calls the page's setting (lr, steps, batch_size, warmup, bf16, eval_every)."""
    rows = [("learning_rate", lr, page("lr")), ("max_steps", steps, page("steps"))]
    rows += [("per_device_train_batch_size", batch, page("batch_size"))] if batch else []
    rows += [("warmup_steps", warmup, page("warmup")),
             ("lr_scheduler_type", "cosine_with_min_lr", "the page's schedule: cosine decay ..."),
             ("lr_scheduler_kwargs", {"min_lr_rate": _LOOP.min_lr_ratio}, "... to a tenth of the peak"),
             ("weight_decay", _LOOP.weight_decay, "the page's AdamW (no decay on biases and norms,"),
             ("adam_beta2", _LOOP.betas[1], "which the Trainer leaves out too)"),
             ("max_grad_norm", _LOOP.grad_clip, "gradient clipping, as on the page"),
             ("bf16", bf16, f"{page('bf16')}: bfloat16 autocast")]
    rows += [("use_cpu", Code("not torch.cuda.is_available()"), "no GPU: say so, or the Trainer refuses bf16")] \
        if bf16 else []
    return rows + [("seed", Code("SEED"), "seed"), ("eval_strategy", "steps"),
                   ("eval_steps", eval_every, page("eval_every")),
                   ("eval_on_start", True, "the page evaluates at step 0 too"),
                   ("logging_steps", 1, "a training loss every step, as the page draws")]


def _head(title: str, imports: str, bf16: bool, model: str, model_note: str, data: str, data_note: str,
          seed: int, about: str = "") -> str:
    imports = ("import torch\n" if bf16 else "") + imports   # torch: for use_cpu
    about = "".join(f"# {line}\n" for line in textwrap.wrap(about, 100)) if about else ""
    title = textwrap.fill(title, 100)
    return f'''"""{title}

Generated by the LLM Training Explorer from the page's settings: MODEL and DATA are the two things
to change; every other value is the page's setting under the tool's name. The page's values suit its
tiny models: bigger models usually train with smaller learning rates (GPT-3's peak went from 6e-4 at
125M parameters to 0.6e-4 at 175B; Brown et al. 2020, table 2.1).
"""
# The page's settings with no counterpart here:
{_UNMAPPED}
{imports}

{about}MODEL = {_lit(model)}   # {model_note}
DATA = {_lit(data)}   # {data_note}
SEED = {seed!r}   # seed
'''


# -- pretraining: transformers' Trainer -------------------------------------------------------------

def _pretrain(cfg) -> tuple[str, str, list[str]]:
    one = cfg.objectives()[0]   # "both" is two jobs on the page; the script is the first, GPT
    clm = one.objective == "clm"
    model = ("HuggingFaceTB/SmolLM2-135M" if cfg.arch == "llama" else "openai-community/gpt2") if clm \
        else "google-bert/bert-base-uncased"
    hub = cfg.corpus == "hub" and cfg.hub_name
    unmapped = [] if hub else [(f"corpus={cfg.corpus}: the page's own text; DATA names a dataset with a "
                               "\"text\" column instead")]
    unmapped += ["tokenizer, vocab_size: the script uses MODEL's tokenizer; the page trains one on its corpus",
                 ("n_layer, n_head, n_embd" if cfg.size == "custom" else "size")
                 + ": the shape is MODEL's (its config), trained from random weights",
                 "sample_every: the Trainer writes no text samples",
                 HELD_OUT + "the page keeps back the last tenth of its text"]
    if cfg.objective == "both":
        unmapped.insert(0, "objective=both: the page trains GPT, then BERT; this script is the GPT one, and the "
                           "BERT one is this page's script with objective mlm")
    args = [("output_dir", "pretrain-run")] + _loop(cfg.lr, cfg.steps, cfg.batch_size, min(cfg.warmup, cfg.steps),
                                                    cfg.eval_every, cfg.bf16)
    args.append(("activation_checkpointing", cfg.grad_checkpoint, "grad_checkpoint: recompute in the backward pass"))
    if clm:
        auto, pad = "AutoModelForCausalLM", ("tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token   "
                                             "# GPT-2 has none; the blocks are full, so none is added\n")
        collator = "DataCollatorForLanguageModeling(tokenizer, mlm=False)   # labels = inputs; the model shifts them"
    else:
        auto, pad = "AutoModelForMaskedLM", ""
        collator = (f"DataCollatorForLanguageModeling(tokenizer, mlm_probability={one.mask_prob!r}, seed=SEED)"
                    "   # mask_prob\n# The page's collator too: of the chosen tokens, 80% become the mask token, "
                    "10% a random token, 10% stay.")
    model_note = (f"arch {cfg.arch}: " if clm else "") + "its architecture and tokenizer; the weights start random"
    what = "next-token prediction (GPT)" if clm else "masked-token prediction (BERT)"
    head = _head(f"Pretraining from random weights, as the page does: {what}, objective {one.objective}, with "
                 "transformers' Trainer.",
                 f"from datasets import load_dataset\nfrom transformers import (AutoConfig, {auto}, AutoTokenizer, "
                 "DataCollatorForLanguageModeling, Trainer,\n                          TrainingArguments, set_seed)",
                 cfg.bf16, model, model_note, hub or "roneneldan/TinyStories",
                 "a dataset with a \"text\" column, on the Hub or in a local folder", cfg.seed,
                 "" if hub else "TinyStories (Eldan & Li 2023): short stories in simple English"
                                + (", like the page's world." if cfg.corpus == "world" else "."))
    return "transformers Trainer", head + f'''BLOCK = {one.block_size!r}   # block_size: the context, in tokens

set_seed(SEED)   # the same seed gives the same starting weights
tokenizer = AutoTokenizer.from_pretrained(MODEL)
{pad}model = {auto}.from_config(AutoConfig.from_pretrained(MODEL))


def tokenize(batch):   # an end-of-text token after each document (BERT's tokenizer adds [SEP] itself)
    return tokenizer([t + (tokenizer.eos_token or "") for t in batch["text"]])


def blocks(batch):     # the documents end to end, cut into windows of BLOCK tokens
    ids = [i for doc in batch["input_ids"] for i in doc]
    return {{"input_ids": [ids[s:s + BLOCK] for s in range(0, len(ids) - BLOCK + 1, BLOCK)]}}


text = load_dataset(DATA, split="train").train_test_split(test_size=0.1, seed=SEED)
tokens = text.map(tokenize, batched=True, remove_columns=text["train"].column_names)
tokens = tokens.map(blocks, batched=True, remove_columns=tokens["train"].column_names)
held_out = tokens["test"].select(range(min(64, len(tokens["test"]))))   # the page evaluates at most 64 windows
collator = {collator}

args = TrainingArguments(
{_kwargs(args)}
)
trainer = Trainer(model=model, args=args, train_dataset=tokens["train"], eval_dataset=held_out,
                  data_collator=collator)
trainer.train()
print(trainer.evaluate())   # the last evaluation, as the page makes at the end
trainer.save_model("pretrain-run")
''', unmapped


# -- SFT: TRL's SFTTrainer --------------------------------------------------------------------------

def _sft(cfg) -> tuple[str, str, list[str]]:
    unmapped = ["families, n_train: the page's built-in task rows; DATA holds the rows",
                ("replay: SFTConfig has no share of the base's corpus in each batch (on the page, batch_size counts "
                "those rows too)"),
                "compare_masking: run the script twice, with completion_only_loss True and False",
                "sweep_sizes: the data sweep is one run per number of rows",
                HELD_OUT + "the page keeps back its own validation rows, split by fact"]
    args = [("output_dir", "sft-run"), ("completion_only_loss", cfg.mask_prompt, "mask_prompt: learn only the answers")]
    args += _loop(cfg.lr, cfg.steps, cfg.batch_size, min(cfg.warmup, cfg.steps), cfg.eval_every, cfg.bf16)
    head = _head("Supervised fine-tuning (SFT) with TRL's SFTTrainer.",
                 "from datasets import load_dataset\nfrom trl import SFTConfig, SFTTrainer", cfg.bf16,
                 "Qwen/Qwen2.5-0.5B", "base: the pretrained model to tune", "trl-lib/tldr",
                 "prompt-completion rows, TRL's format", cfg.seed,
                 "TRL's example rows: Reddit posts and their TL;DR summaries, as plain text. The page's rows are "
                 "conversational (prompt and completion as chat messages), which SFTTrainer renders with MODEL's "
                 "chat template.")
    return "TRL SFTTrainer", head + f'''
rows = load_dataset(DATA, split="train").train_test_split(test_size=0.1, seed=SEED)
args = SFTConfig(
{_kwargs(args)}
)
trainer = SFTTrainer(model=MODEL, args=args, train_dataset=rows["train"], eval_dataset=rows["test"])
trainer.train()
print(trainer.evaluate())   # held-out loss and token accuracy, as the page's last evaluation
trainer.save_model("sft-run")
''', unmapped


# -- RLHF: TRL's RewardTrainer, then RLOOTrainer (the page's PPO); or DPOTrainer ---------------------

RLOO_WHY = """
# Why TRL's RLOOTrainer for the page's PPO. The page runs PPO's clipped objective with a group
# baseline and no value network: each answer's reward is the reward model's score minus kl_coef times
# the answer's summed log(pi/pi_SFT), its advantage that reward minus the mean reward of the answers to
# the same prompt, scaled to unit spread over the batch. RLOOTrainer computes the same rewards (its
# beta is the KL coefficient, on the same summed log-ratio) and, with normalize_advantages=True, the
# same advantages: its leave-one-out baseline gives each difference times k/(k-1), which the
# normalisation divides away. GRPOTrainer puts the KL term in the loss instead; TRL 1.16 has no
# PPOTrainer (PPO with a value network). The main difference left: RLOO clips the ratio of whole
# answers and averages over answers; the page clips each token's ratio and averages over tokens."""
PREFS = "trl-lib/ultrafeedback_binarized"
PAIRS_NOTE = "preference pairs: prompt, chosen, rejected (TRL's format)"
RLHF_ABOUT = ("TRL's example pairs come from UltraFeedback (Cui et al. 2023), whose preferences are GPT-4's ratings: "
              "AI feedback, strictly. Human comparisons go here for RLHF proper.")
WARMUP = "the page's: a tenth of the steps, at most 10"   # engine/rlhf/policy.py: settings()
PINNED = "pinned"   # by engine/cai/run.py, for the page's RLAIF step


def _rlhf_names(name: str) -> str:
    return WARMUP if name == "warmup" else name


def _reward_names(name: str) -> str:
    return {"lr": "rm_lr", "steps": "rm_steps"}.get(name, _rlhf_names(name))


def _cai_names(name: str) -> str:
    """What the constitutional AI page calls the RLAIF step's settings: most are pinned in engine/cai/run.py."""
    return {"lr": "dpo_lr", "steps": "dpo_steps", "beta": "beta"}.get(name, PINNED)


def _pairs_head(r, title, imports, model, model_note, about) -> str:
    return _head(title, "from datasets import load_dataset\n" + imports, r.bf16, model, model_note, PREFS,
                 PAIRS_NOTE, r.seed, about) + \
        '\npairs = load_dataset(DATA, split="train").train_test_split(test_size=0.1, seed=SEED)\n'


def _reward_and_rloo(r, title, model_note, about, page=_rlhf_names, rm_page=_reward_names) -> str:
    """A reward model, then RLOO against it, for an RLHFConfig (the RLHF page's, or the one CAI pins)."""
    rm_args = [("output_dir", "reward-model")]
    rm_args += _loop(r.rm_lr, r.rm_steps, r.batch_size, min(10, r.rm_steps // 10), r.eval_every, r.bf16, rm_page)
    rm_args += [("save_strategy", "steps"), ("save_steps", r.eval_every),
                ("save_total_limit", 2, "the best checkpoint and the newest"),
                ("load_best_model_at_end", True, "the page keeps the weights of the evaluation"),
                ("metric_for_best_model", "accuracy", "with the best held-out accuracy")]
    k = r.samples_per_prompt
    pol_args = [("output_dir", "policy"), ("num_generations", k, page("samples_per_prompt")),
                ("per_device_train_batch_size", r.prompts_per_step * k, " x ".join(
                    dict.fromkeys((page("prompts_per_step"), page("samples_per_prompt"))))),
                ("per_device_eval_batch_size", r.prompts_per_step * k),
                ("num_iterations", r.ppo_epochs, page("ppo_epochs") + ": updates on each batch of samples"),
                ("epsilon", r.clip, page("clip")), ("beta", r.kl_coef, page("kl_coef")),
                ("normalize_advantages", True, "advantages to unit spread, as on the page"),
                ("temperature", r.temperature, page("temperature")),
                ("max_completion_length", r.max_new_tokens, page("max_new_tokens"))]
    pol_args += _loop(r.lr, r.steps, None, min(10, r.steps // 10), r.eval_every, r.bf16, page)
    head = _pairs_head(r, title, "from trl import RewardConfig, RewardTrainer, RLOOConfig, RLOOTrainer",
                       "Qwen/Qwen2.5-0.5B-Instruct", model_note, about)
    return head + f'''
# Step 1: a reward model learns the preferences (InstructGPT's step 2, the Bradley-Terry loss).
args = RewardConfig(
{_kwargs(rm_args)}
)
trainer = RewardTrainer(model=MODEL, args=args, train_dataset=pairs["train"], eval_dataset=pairs["test"])
trainer.train()
print(trainer.evaluate())
trainer.save_model("reward-model")
{RLOO_WHY}

# Step 2: the policy answers the prompts, the reward model scores the answers, RLOO updates the policy.
prompts = pairs.select_columns(["prompt"])
args = RLOOConfig(
{_kwargs(pol_args)}
)
trainer = RLOOTrainer(model=MODEL, reward_funcs="reward-model", args=args, train_dataset=prompts["train"],
                      eval_dataset=prompts["test"])
trainer.train()
print(trainer.evaluate())
trainer.save_model("policy")
'''


def _dpo(r, title, model_note, about, notes: str = "", page=_rlhf_names) -> str:
    """DPO on the pairs, for an RLHFConfig (the RLHF page's, or the one CAI pins)."""
    args = [("output_dir", "dpo-policy"), ("beta", r.beta, page("beta"))]
    args += _loop(r.lr, r.steps, r.batch_size, min(10, r.steps // 10), r.eval_every, r.bf16, page)
    head = _pairs_head(r, title, "from trl import DPOConfig, DPOTrainer", "Qwen/Qwen2.5-0.5B-Instruct", model_note,
                       about)
    return head + f'''{notes}
# The reference is a second, frozen copy of MODEL, as on the page.
args = DPOConfig(
{_kwargs(args)}
)
trainer = DPOTrainer(model=MODEL, args=args, train_dataset=pairs["train"], eval_dataset=pairs["test"])
trainer.train()
print(trainer.evaluate())   # eval_rewards/margins and eval_rewards/accuracies: the page's held-out curves
trainer.save_model("dpo-policy")
'''


def _rlhf(cfg) -> tuple[str, str, list[str]]:
    unmapped = [("source, taste, noise, n_pairs: the page's simulated labeler (or its person, or its file) makes "
                "the pairs; DATA holds labelled pairs")]
    if cfg.source != "simulated":
        unmapped.append(f"source={cfg.source}: the command line simulates the labels whatever the source; save the "
                        "page's pairs as JSON Lines (prompt, chosen, rejected) in a folder as train.jsonl, and set "
                        "DATA to the folder")
    unmapped.append(HELD_OUT + "the page keeps back pairs by prompt")
    if cfg.method == "ppo":
        unmapped += ["reward: the reward model is the one step 1 trains (reward-model/)",
                     "temperature: on the page it also samples the answers the simulated labeler compares"]
        return "TRL RewardTrainer + RLOOTrainer", _reward_and_rloo(
            cfg, "RLHF with TRL, method ppo: a reward model (RewardTrainer), then the policy against it "
                 "(RLOOTrainer).",
            "parent: the SFT model to start from", RLHF_ABOUT), unmapped
    unmapped += [("rm_steps, rm_lr: the page also trains a reward model, to score answers before and after; DPO "
                 "needs none (method ppo's script trains one with RewardTrainer)"),
                 "temperature, max_new_tokens: how the simulated labeler's answers are sampled"]
    return "TRL DPOTrainer", _dpo(cfg, "RLHF without a reward model, method dpo: DPO (Rafailov et al. 2023) with "
                                  "TRL's DPOTrainer.", "parent: the SFT model to start from", RLHF_ABOUT), unmapped


# -- constitutional AI: RLAIF as DPO (or a reward model and RLOO) on AI-labelled pairs ----------------

CAI_PAPER = """
# Constitutional AI (Bai et al. 2022) has two steps. SL-CAI: the model critiques and revises its own
# answers by the constitution's principles and is fine-tuned on the revisions (the SFT page's script, on
# those rows). RLAIF: a feedback model compares pairs of answers by a principle of the constitution; the
# paper trained a preference model on these AI labels and ran RL against it, as the page's method ppo
# does (a reward model, then PPO; with TRL, RLOO). This script is the RLAIF step as the page's method
# dpo runs it: DPO on the AI-labelled pairs, with no preference model and no sampling."""
CAI_ABOUT = ("TRL's example pairs come from UltraFeedback (Cui et al. 2023): AI feedback, GPT-4's ratings by the "
             "dataset's own rubric rather than a constitution. Pairs your feedback model labelled by your "
             "constitution go here. The page fixes the settings marked \"pinned\" for its RLAIF step "
             "(engine/cai/run.py).")
CAI_MODEL = "the SL-CAI model (the page first tunes start on its revised answers)"


def _cai_rm_names(name: str) -> str:
    return PINNED


def _cai_rl(cfg):
    """The RLHFConfig engine/cai/run.py pins for its RLAIF step (with dpo_steps as the steps: for DPO the
    page caps them at three passes over the labels, which depends on how many it gets)."""
    from engine.rlhf.config import RLHFConfig
    return RLHFConfig(method=cfg.method, steps=cfg.dpo_steps, lr=cfg.dpo_lr, beta=cfg.beta,
                      eval_every=max(1, cfg.dpo_steps // 4), seed=cfg.seed, batch_size=32, rm_steps=150,
                      rm_lr=1e-3, kl_coef=0.05, bf16=True)


def _cai(cfg) -> tuple[str, str, list[str]]:
    unmapped = [("constitution, judge_examples: the page's AI feedback model (a judge that reads the principles); "
                "DATA holds pairs a feedback model labelled"),
                ("n_samples, sl_steps, sl_lr, sl_helpful: SL-CAI, the supervised step before RLAIF (the SFT page's "
                "script, on the revised answers)"),
                "n_pairs: how many pairs the feedback model labels; DATA holds them",
                ("compare_human, human_noise: the same optimisation on simulated human labels (this script again, "
                "with human-labelled pairs in DATA)"),
                HELD_OUT + "the page keeps back pairs by prompt"]
    r = _cai_rl(cfg)
    if cfg.method == "ppo":
        unmapped.append("the reward model's steps and learning rate and PPO's settings: pinned on the page "
                        "(engine/cai/run.py), as in this script")
        return "TRL RewardTrainer + RLOOTrainer", _reward_and_rloo(
            r, "Constitutional AI's RLAIF step, method ppo, as in the paper: a preference model on AI labels "
               "(RewardTrainer), then RL against it (RLOOTrainer).", CAI_MODEL, CAI_ABOUT, _cai_names,
            _cai_rm_names), unmapped
    unmapped.append("dpo_steps: the page also stops at three passes over the labels; max_steps overrides "
                    "num_train_epochs here")
    return "TRL DPOTrainer", _dpo(r, "Constitutional AI's RLAIF step, method dpo: DPO on AI-labelled pairs, "
                                  "with TRL's DPOTrainer.", CAI_MODEL, CAI_ABOUT, CAI_PAPER, _cai_names), unmapped
