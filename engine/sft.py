"""Supervised fine-tuning: teach a pretrained base to answer instructions.

The data are (prompt, completion) pairs rendered with a chat template, the first step of
InstructGPT (Ouyang et al. 2022). With loss masking the prompt's tokens are labelled -100,
so the model is trained only on what the assistant says (TRL's `completion_only_loss`);
without it, it also learns to predict the questions. A share of every batch is the base's
own corpus (replay), so the model keeps the language and facts it learned in pretraining.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import torch
from transformers import DataCollatorForSeq2Seq

from engine import demos
from engine.core import limits, runs
from engine.core.config import StageConfig, UserError, field
from engine.core.loop import LoopSettings, train

# from_pretrained builds models on the meta device by patching torch process-wide, so a model made or
# resized in another thread meanwhile comes out empty; resizing and sampling also draw from torch's
# global RNG. Loading, resizing and sampling hold the engine's lock for that RNG.
from engine.core.models import GLOBAL_RNG as model_lock
from engine.core.report import Reporter, Segment, StageResult, last
from engine.core.runs import Trained
from engine.core.sampling import context_length
from engine.pretraining import PretrainConfig, load_text, prepare, windows
from engine.text.instructions import FAMILIES, Example, build

USER, ASSISTANT = "<|user|>", "<|assistant|>"
# A transformers chat template (Jinja), saved with the tokenizer: apply_chat_template works on every SFT run.
CHAT_TEMPLATE = """{%- for m in messages -%}
  {%- if m['role'] == 'user' -%}<|user|>{{ m['content'] }}
  {%- elif m['role'] == 'assistant' -%}<|assistant|>{{ m['content'] }}<eos>
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"""


@dataclasses.dataclass
class SFTConfig(StageConfig):
    PRESETS = {"quick demo": dict(n_train=1000, steps=500, eval_every=100, max_seconds=120),
               "standard": dict(n_train=1000, steps=1600, eval_every=100, max_seconds=180),
               "thorough": dict(n_train=2000, steps=3200, eval_every=200, max_seconds=300)}
    PRESET_NOTES = {"quick demo": "500 steps, about 20-25 s on a quiet 2-core machine: about half of the "
                                  "validation prompts answered exactly",
                    "standard": "1,600 steps, the baked run's recipe: about a minute on a quiet machine, longer "
                                "when it is busy; close to 90% of the validation prompts",
                    "thorough": "twice the data and steps: several minutes"}
    base: str = field("", "folder name of the pretrained run to tune (empty: the baked base)")
    families: str = field(",".join(FAMILIES), "built-in task families, comma-separated (may be empty with uploaded rows)")
    n_train: int = field(1000, "training examples per family (at most)", range=(1, 10_000))
    mask_prompt: bool = field(True, "label prompt tokens -100: learn only the answers")
    replay: float = field(0.25, "share of each batch that is base-corpus text, still trained to predict the "
                                "next token (against forgetting)", range=(0.0, 0.9))
    compare_masking: bool = field(False, "also train with the other masking setting, as a second curve")
    steps: int = field(500, "training steps", range=(1, 100_000))
    lr: float = field(3e-3, "peak learning rate", range=(1e-6, 1.0))
    batch_size: int = field(32, "rows per step, replay rows included", range=(2, 256))
    warmup: int = field(30, "warmup steps", range=(0, 100_000))
    max_seconds: int = field(120, "time limit in seconds: a safety net; the presets finish their steps "
                                   "well before it on a quiet machine", range=(1, limits.MAX_JOB_SECONDS))
    eval_every: int = field(100, "steps between evaluations", range=(1, 100_000))
    seed: int = field(0, "random seed: same seed and data give the same curve")
    bf16: bool = field(True, "bfloat16 autocast")
    sweep_sizes: str = field("10,100,1000", "examples per family at each point of the data sweep")

    def family_list(self) -> list[str]:
        fams = [f.strip() for f in self.families.split(",") if f.strip()]
        if bad := [f for f in fams if f not in FAMILIES]:
            raise UserError(f"Unknown task family {', '.join(bad)}: choose from {', '.join(FAMILIES)}.")
        return fams

    def sizes(self) -> list[int]:
        try:
            sizes = sorted({int(s) for s in self.sweep_sizes.split(",") if s.strip()})
        except ValueError:
            raise UserError(f"Sweep sizes must be whole numbers separated by commas, not {self.sweep_sizes!r}.") from None
        if not sizes or sizes[0] < 1:
            raise UserError("Give the sweep at least one size of 1 or more examples per family.")
        return sizes

    def variants(self) -> list["SFTConfig"]:
        """The run itself and, to compare, the same run with the other masking setting."""
        if not self.compare_masking:
            return [self]
        return [self.replace(compare_masking=False), self.replace(compare_masking=False, mask_prompt=not self.mask_prompt)]


def default_examples(cfg: SFTConfig) -> list[Example]:
    return build(cfg.seed, cfg.n_train, families=cfg.family_list())


def chat_tokenizer(tok):
    """A copy of the base's tokenizer with special tokens for the roles and the chat template."""
    tok = copy.deepcopy(tok)
    if USER not in tok.get_vocab():
        tok.add_special_tokens({"additional_special_tokens": [USER, ASSISTANT]})
    tok.chat_template = CHAT_TEMPLATE
    return tok


def add_chat_template(model, tok, seed: int):
    """The chat tokenizer, and room in the model for its new tokens: transformers draws their
    embeddings from a normal distribution with the old embeddings' mean and covariance, so the
    draw is seeded: the same seed gives the same model in any process (a thread, a Ray worker)."""
    tok = chat_tokenizer(tok)
    with model_lock:
        torch.manual_seed(seed)
        model.resize_token_embeddings(len(tok))
    return tok


def encode(tok, ex: Example, mask_prompt: bool, max_len: int) -> tuple[dict, bool]:
    """input_ids and labels of one example; returns whether it had to be cut to fit."""
    prompt = tok.apply_chat_template([{"role": "user", "content": ex.prompt}], add_generation_prompt=True,
                                     tokenize=False)
    full = tok.apply_chat_template(ex.messages(), tokenize=False)
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    ids = tok(full, add_special_tokens=False)["input_ids"]
    cut = len(ids) > max_len
    if cut:  # keep the answer: drop the start of the prompt
        ids, n_prompt = ids[-max_len:], max(0, len(p_ids) - (len(ids) - max_len))
    else:
        n_prompt = len(p_ids)
    labels = [-100] * n_prompt + ids[n_prompt:] if mask_prompt else list(ids)
    return {"input_ids": ids, "labels": labels}, cut


_ENCODED: dict[tuple, list[tuple[dict, bool]]] = {}   # the last few data sets, formatted: a rerun starts at once


def encode_all(tok, examples: list[Example], mask_prompt: bool, max_len: int,
               progress: Callable[[int, int], None] = lambda done, total: None) -> list[tuple[dict, bool]]:
    """encode() of every example, kept for the next run with the same tokenizer, rows and
    settings (the page formats the rows once to count the cut ones; the job then reuses them).
    Formatting about 5,000 rows through the chat template takes one to two seconds here, so it
    reports progress(done, total) as it goes."""
    key = (tok.name_or_path, len(tok), tok.chat_template, mask_prompt, max_len,
           hash(tuple((e.family, e.prompt, e.completion, e.split) for e in examples)))
    if key not in _ENCODED:
        out = []
        for i, e in enumerate(examples):
            out.append(encode(tok, e, mask_prompt, max_len))
            if i % 500 == 499:
                progress(i + 1, len(examples))
        progress(len(examples), len(examples))
        _ENCODED[key] = out
        while len(_ENCODED) > 6:
            _ENCODED.pop(next(iter(_ENCODED)))
    return _ENCODED[key]


def token_view(tok, ex: Example, mask_prompt: bool, max_len: int) -> list[tuple[str, bool]]:
    """Each token of the formatted example and whether it counts towards the loss. A label
    scores the prediction made one position earlier, so the first token never counts."""
    enc, _ = encode(tok, ex, mask_prompt, max_len)
    pieces = tok.convert_ids_to_tokens(enc["input_ids"])
    return [(p, i > 0 and lab != -100) for i, (p, lab) in enumerate(zip(pieces, enc["labels"]))]


def count_truncated(tok, examples: list[Example], max_len: int) -> int:
    return sum(cut for _, cut in encode_all(tok, examples, True, max_len))


def check_vocab(tok, examples: list[Example]) -> None:
    """A character-level base cannot spell what it never saw: refuse before training, saying which."""
    chars = sorted({c for ex in examples for c in ex.prompt + ex.completion})
    ids = tok(chars, add_special_tokens=False)["input_ids"] if chars else []
    unk = {c for c, i in zip(chars, ids) if tok.unk_token_id in i}
    if unk:
        raise UserError(f"The base model's tokenizer cannot encode {' '.join(repr(c) for c in sorted(unk))}. "
                        "Remove these characters from the data, or pick a base trained with byte-level BPE.")


@torch.no_grad()
def answer(model, tok, prompt: str, greedy: bool = True, max_new_tokens: int = 32, seed: int = 0) -> str:
    text = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False)
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    ctx = context_length(model)
    ids = ids[:, -(ctx - 1):]   # as in training: a long prompt loses its start, never its end
    with model_lock:
        torch.manual_seed(seed)
        out = model.generate(ids, attention_mask=torch.ones_like(ids),
                             max_new_tokens=min(max_new_tokens, ctx - ids.shape[1]),
                             do_sample=not greedy, temperature=None if greedy else 0.8, top_k=None, top_p=None,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


@torch.no_grad()
def answers(model, tok, prompts: list[str], greedy: bool = True, max_new_tokens: int = 32, seed: int = 0) -> list[str]:
    """answer() for many prompts in a few `generate` calls: prompts with the same room to answer
    (the context left after them) go together, padded on the left, the attention mask telling
    the model where each starts. Greedy answers are the ones answer() gives one at a time."""
    ctx = context_length(model)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ids = [tok(tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False),
               add_special_tokens=False)["input_ids"][-(ctx - 1):] for p in prompts]
    groups: dict[int, list[int]] = {}
    for i, x in enumerate(ids):
        groups.setdefault(min(max_new_tokens, ctx - len(x)), []).append(i)
    out = [""] * len(prompts)
    for room, members in groups.items():
        width = max(len(ids[i]) for i in members)
        x = torch.tensor([[pad] * (width - len(ids[i])) + ids[i] for i in members])
        mask = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in members])
        with model_lock:
            torch.manual_seed(seed)
            gen = model.generate(x, attention_mask=mask, max_new_tokens=room, do_sample=not greedy,
                                 temperature=None if greedy else 0.8, top_k=None, top_p=None,
                                 eos_token_id=tok.eos_token_id, pad_token_id=pad)
        for i, row in zip(members, gen[:, width:].tolist()):
            row = row[:row.index(tok.eos_token_id)] if tok.eos_token_id in row else row
            out[i] = tok.decode(row, skip_special_tokens=True).strip()
    return out


def load_base(cfg: SFTConfig):
    """The run to tune: a pretrained base, or an SFT run to tune further (constitutional AI tunes its
    helpful-only model on revisions). `info` is the pretraining run's: replay reads its corpus."""
    path = runs.find_run(cfg.base, None if cfg.base else "pretrain")
    model, tok, info = runs.load_run(path)
    while info.stage == "sft" and info.parent:
        info = runs.read_info(runs.find_run(info.parent))
    if info.stage != "pretrain":
        raise UserError(f"Run {path.name} is neither a pretrained nor an SFT model: pick another base.")
    if info.objective != "clm":
        raise UserError("SFT needs a GPT-style (next-token) base; this run is BERT-style. Pick another base.")
    return path, model, tok, info


def fit(cfg: SFTConfig, reporter: Reporter, examples: list[Example] | None = None) -> Trained:
    """Tune the base on `examples` (default: the built-in families), reporting to `reporter`. The
    facts name the base run ("base"); the loop's message says what to know about how it went."""
    examples = examples if examples is not None else default_examples(cfg)
    train_ex = [e for e in examples if e.split == "train"]
    test_ex = [e for e in examples if e.split == "test"]
    if len(train_ex) < 2:
        raise UserError("There are fewer than two training rows: add rows with split 'train' or pick task families.")
    base_path, model, tok, info = load_base(cfg)
    check_vocab(tok, examples)
    tok = add_chat_template(model, tok, cfg.seed)
    ctx = context_length(model)
    what = f"formatting {len(examples):,} rows in the chat template"
    enc = encode_all(tok, train_ex, cfg.mask_prompt, ctx, lambda done, total: reporter.prepare(what, done, total))
    test_enc = [x for x, _ in encode_all(tok, test_ex, True, ctx)]   # held-out scoring counts answers only
    n_cut = sum(c for _, c in enc)
    collate = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100, return_tensors="pt")
    gen = torch.Generator().manual_seed(cfg.seed)
    base_data = _base_data(info)
    base_val = _base_val_batches(base_data, info)
    n_replay = min(cfg.batch_size - 1, round(cfg.replay * cfg.batch_size)) if base_data else 0
    n_sft = cfg.batch_size - n_replay
    fams = sorted({e.family for e in test_ex})
    pools = {}
    for i, e in enumerate(train_ex):
        pools.setdefault(e.family, []).append(i)
    pools = list(pools.values())

    def next_batch(step):
        # Each family equally often, however many rows it has: facts (135) would otherwise drown among
        # the transformations (T5's examples-proportional mixing with a small cap, Raffel et al. 2020, 3.5.2).
        fam = torch.randint(len(pools), (n_sft,), generator=gen).tolist()
        idx = [pools[f][torch.randint(len(pools[f]), (1,), generator=gen).item()] for f in fam]
        b = dict(collate([enc[i][0] for i in idx]))
        if n_replay:  # corpus windows as long as the padded examples, appended as extra rows
            L = b["input_ids"].shape[1]
            x = windows(base_data.train, torch.randint(len(base_data.train) - L, (n_replay,), generator=gen), L)
            b = {"input_ids": torch.cat([b["input_ids"], x]),
                 "attention_mask": torch.cat([b["attention_mask"], torch.ones_like(x)]),
                 "labels": torch.cat([b["labels"], x])}
        return b

    def loss_fn(model, batch):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        per_tok = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), batch["labels"][:, 1:].flatten(),
                                                    ignore_index=-100, reduction="none").view(len(logits), -1)
        counted = batch["labels"][:, 1:] != -100
        sft = per_tok[:n_sft].sum() / counted[:n_sft].sum().clamp(min=1)
        extra = {"mean_token_accuracy": _token_accuracy(logits[:n_sft], batch["labels"][:n_sft]),
                 "num_tokens": counted[:n_sft].sum().item()}
        if not n_replay:
            return sft, extra
        # The corpus's next-token loss joins the tuning loss, as InstructGPT's "pretraining mix" joins
        # its RL objective (Ouyang et al. 2022, eq. 2; here with weight 1): the model keeps its language
        # and the facts it read, which the facts family needs.
        replay = per_tok[n_sft:].mean()
        return sft + replay, {**extra, "sft_loss": sft.item(), "replay_loss": replay.item()}

    def evaluate(step, final):
        m = score(model, collate, test_enc, [e.family for e in test_ex], fams) if test_enc else {}
        if base_val:
            m["base_eval_loss"] = sum(model(input_ids=x, labels=x).loss.item() for x in base_val) / len(base_val)
        return m

    facts = {"params": model.num_parameters(), "base": base_path.name, "train_examples": len(train_ex),
             "test_examples": len(test_ex), "truncated": n_cut, "families": fams, "mask_prompt": cfg.mask_prompt,
             "replay_rows": n_replay, "context": ctx,
             "base_loss_before": info.summary.get("eval_loss")}
    reporter.set_info(**facts)
    settings = LoopSettings(steps=cfg.steps, lr=cfg.lr, warmup_steps=min(cfg.warmup, cfg.steps),
                            eval_every=cfg.eval_every, max_seconds=cfg.max_seconds, bf16=cfg.bf16)
    result = train(model, loss_fn, next_batch, settings, reporter, evaluate)
    if result.status == "diverged":
        raise UserError(result.message)
    notes = [result.message] if result.message else []
    if result.status == "time limit":   # a complete, annealed model: say so, not "stopped"
        notes = [(f"used its whole time limit of {cfg.max_seconds} s ({result.steps:,} of {cfg.steps:,} steps, the "
                  "learning rate annealed to the end of that time); the model is complete and saved. More steps: "
                  "raise the time limit under Advanced settings")]
    if n_cut:
        notes.append(f"{n_cut} training examples were longer than the context of {ctx} tokens and lost the "
                     "start of their prompt")
    result.message = "; ".join(notes)
    return Trained(model.eval(), tok, result, facts)


def run(cfg: SFTConfig, reporter: Reporter, examples: list[Example] | None = None,
        owner: str | None = None) -> StageResult:
    """The SFT page's job: tune, answer held-out prompts before and after, save as a run of stage
    "sft" whose parent is the base."""
    examples = examples if examples is not None else default_examples(cfg)
    trained = fit(cfg, reporter, examples)
    base = trained.facts["base"]
    reporter.set_info(before_after=before_after(runs.find_run(base), trained.model, trained.tokenizer,
                                                [e for e in examples if e.split == "test"], seed=cfg.seed))
    return trained.save("sft", cfg.to_dict(), name=f"{'masked' if cfg.mask_prompt else 'unmasked'}-{cfg.key()[:6]}",
                        parent=base, owner=owner)


def _token_accuracy(logits, labels) -> float:
    pred, gold = logits[:, :-1].argmax(-1), labels[:, 1:]
    keep = gold != -100
    return (pred[keep] == gold[keep]).float().mean().item() if keep.any() else 0.0


def score(model, collate, encoded: list[dict], families: list[str], fams: list[str]) -> dict:
    """Held-out loss and accuracy. An answer counts as right when every answer token, and the
    end token, is the model's top choice given the right prefix: exactly when greedy decoding
    would write that answer (up to bf16 rounding of near ties: bench_sft.py measured 85.7% this
    way against 86.5% by generating). One forward pass instead of a generation per prompt."""
    total, right, tok_right, tok_n, loss_sum = {}, {}, 0, 0, 0.0
    for i in range(0, len(encoded), 64):
        b = collate(encoded[i:i + 64])
        out = model(**b)
        pred, gold = out.logits[:, :-1].argmax(-1), b["labels"][:, 1:]
        keep = gold != -100
        loss_sum += out.loss.item() * keep.sum().item()
        ok = ((pred == gold) | ~keep).all(-1)
        tok_right += (pred[keep] == gold[keep]).sum().item()
        tok_n += keep.sum().item()
        for f, good in zip(families[i:i + 64], ok.tolist()):
            total[f] = total.get(f, 0) + 1
            right[f] = right.get(f, 0) + good
    m = {"eval_loss": loss_sum / max(1, tok_n), "eval_mean_token_accuracy": tok_right / max(1, tok_n),
         "eval_accuracy": sum(right.values()) / max(1, sum(total.values()))}
    m.update({f"eval_accuracy/{f}": right[f] / total[f] for f in fams})
    return m


def _base_data(info):
    """The base's own tokenized corpus (cached by pretrain.prepare), or None for an upload."""
    pcfg = PretrainConfig.from_dict(info.config)
    if pcfg.corpus not in ("world", "python-docs"):
        return None   # an uploaded corpus is not kept with the run
    return prepare(pcfg, load_text(pcfg))


def _base_val_batches(data, info) -> list[torch.Tensor]:
    """A few windows of the base's own validation text, to watch for forgetting."""
    if data is None:
        return []
    T = info.config["block_size"]
    starts = torch.linspace(0, len(data.val) - T, 32).long()
    return [windows(data.val, starts[i:i + 16], T) for i in range(0, 32, 16)]


def before_after(base_path, tuned, tok, examples: list[Example], per_family: int = 3, seed: int = 0) -> list[dict]:
    """The same held-out prompts answered by the base and the tuned model, greedy and sampled.
    The base gets the tuned tokenizer (the role tokens' rows drawn as add_chat_template draws them,
    under the same seed), so both read exactly the same tokens."""
    with model_lock:
        base, _, _ = runs.load_run(base_path)
        torch.manual_seed(seed)   # as add_chat_template: the role tokens' rows are drawn
        base.resize_token_embeddings(len(tok))
    picked: dict[str, list[Example]] = {}
    for e in examples:
        if e.split == "test" and len(picked.setdefault(e.family, [])) < per_family:
            picked[e.family].append(e)
    chosen = [e for exs in picked.values() for e in exs]
    prompts = [e.prompt for e in chosen]
    said = {}
    for name, m in (("base", base), ("tuned", tuned)):
        said[f"{name} (greedy)"] = answers(m, tok, prompts, greedy=True)
        said[f"{name} (sampled)"] = answers(m, tok, prompts, greedy=False, seed=seed)
    return [{"family": e.family, "prompt": e.prompt, "expected": e.completion, **{k: v[i] for k, v in said.items()}}
            for i, e in enumerate(chosen)]


def accuracy(rows: list[dict], column: str) -> float:
    return sum(r[column] == r["expected"] for r in rows) / max(1, len(rows))


def first_rows(examples: list[Example], n: int) -> list[Example]:
    """Every held-out row, and the first n training rows of each family."""
    taken: dict[str, int] = {}
    out = []
    for e in examples:
        if e.split == "train":
            if taken.get(e.family, 0) >= n:
                continue
            taken[e.family] = taken.get(e.family, 0) + 1
        out.append(e)
    return out


def sweep(cfg: SFTConfig, reporter: Reporter, examples: list[Example] | None = None) -> StageResult:
    """How much data is enough: the same tuning on the first n training rows of each family, for
    each n in cfg.sizes(), one after another, scored on the same held-out rows. Each point emits
    {"n_train": n, "eval_accuracy": ..., "eval_accuracy/<family>": ...}. A point gets at most
    its share of the job's time limit. Saves no model: the points are the result."""
    examples = examples if examples is not None else build(cfg.seed, max(cfg.sizes()), families=cfg.family_list())
    sizes = cfg.sizes()
    seconds = min(cfg.max_seconds, limits.MAX_JOB_SECONDS / len(sizes))
    step0, t0, points = 0, 0.0, []
    for n in sizes:
        if reporter.should_stop():
            return StageResult(None, {"points": points}, "stopped")
        part = Segment(reporter, step0=step0, seconds0=t0, losses_only=True)
        fit(cfg.replace(n_train=n, max_seconds=int(seconds)), part, first_rows(examples, n))
        if final := last(part.records, "eval_accuracy"):
            point = {"n_train": n, **{k: v for k, v in final.items() if k.startswith("eval_")}}
            reporter.emit(point)
            points.append(point)
        step0, t0 = step0 + cfg.steps, t0 + part.seconds
    return StageResult(None, {"points": points})


def base_vs_tuned(cfg: SFTConfig, reporter: Reporter) -> StageResult:
    """The page's first screen, recorded (engine/demos.py): the baked base and the baked SFT run it
    was tuned into (pretrain-base-gpt -> sft-base) answering the same validation prompts, two per
    family, and the SFT run's validation accuracy as it trained. Trains nothing."""
    tuned_path = runs.find_run("", "sft")
    model, tok, info = runs.load_run(tuned_path)
    baked = cfg.replace(**{k: v for k, v in info.config.items() if k in SFTConfig.__dataclass_fields__})
    held = [e for e in default_examples(baked) if e.split == "test"]
    reporter.set_info(before_after=before_after(runs.find_run(info.parent), model, tok, held, per_family=2,
                                                seed=cfg.seed), base=info.parent, tuned=tuned_path.name,
                      steps=info.summary.get("steps"), test_examples=len(held))
    for r in runs.read_metrics(tuned_path):
        if "eval_accuracy" in r:
            reporter.emit(r)
    return StageResult(None, {k: v for k, v in info.summary.items() if k.startswith("eval_")})


demos.register("sft-base-vs-tuned", base_vs_tuned, SFTConfig(), keep=("before_after", "base", "tuned", "steps",
                                                                       "test_examples"))
