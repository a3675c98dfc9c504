"""Supervised fine-tuning: teach a pretrained base to answer instructions.

The data are (prompt, completion) pairs rendered with a chat template. With loss masking
the prompt's tokens are labelled -100, so the model is trained only on what the assistant
says (TRL's `completion_only_loss`); without it, it also learns to predict the questions.
"""
from __future__ import annotations

import dataclasses

import torch
from transformers import DataCollatorForSeq2Seq

from . import runs
from .config import StageConfig, UserError, field
from .instructions import FAMILIES, Example, build
from .loop import LoopSettings, train
from .pretrain import PretrainConfig, load_text, prepare, windows
from .sampling import context_length

USER, ASSISTANT = "<|user|>", "<|assistant|>"
# A transformers chat template (Jinja), saved with the tokenizer: apply_chat_template works on every SFT run.
CHAT_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}<|user|>{{ m['content'] }}"
                 "{% elif m['role'] == 'assistant' %}<|assistant|>{{ m['content'] }}<eos>{% endif %}{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@dataclasses.dataclass
class SFTConfig(StageConfig):
    base: str = field("", "folder name of the pretrained run to tune (empty: the baked base)")
    families: str = field(",".join(FAMILIES), "task families, comma-separated")
    n_train: int = field(200, "training examples per family (at most)", range=(1, 10_000))
    mask_prompt: bool = field(True, "label prompt tokens -100: learn only the answers")
    compare_masking: bool = field(False, "also train with the other masking setting, as a second curve")
    steps: int = field(800, "training steps", range=(1, 100_000))
    lr: float = field(1e-3, "peak learning rate", range=(1e-6, 1.0))
    batch_size: int = field(32, "examples per step", range=(1, 256))
    warmup: int = field(30, "warmup steps", range=(0, 100_000))
    max_seconds: int = field(90, "time limit in seconds", range=(1, 300))
    eval_every: int = field(50, "steps between evaluations", range=(1, 100_000))
    seed: int = field(0, "random seed")
    bf16: bool = field(True, "bfloat16 autocast")

    def family_list(self) -> list[str]:
        fams = [f.strip() for f in self.families.split(",") if f.strip()]
        bad = [f for f in fams if f not in FAMILIES]
        if bad or not fams:
            raise UserError(f"Unknown task family {', '.join(bad) or '(none)'}: choose from {', '.join(FAMILIES)}.")
        return fams

    def variants(self) -> list["SFTConfig"]:
        if not self.compare_masking:
            return [self]
        return [self.replace(compare_masking=False), self.replace(compare_masking=False, mask_prompt=not self.mask_prompt)]


def default_examples(cfg: SFTConfig) -> list[Example]:
    return build(cfg.seed, cfg.n_train, families=cfg.family_list())


def add_chat_template(model, tok) -> None:
    """New special tokens for the roles; transformers initialises their embeddings to the mean."""
    if USER not in tok.get_vocab():
        tok.add_special_tokens({"additional_special_tokens": [USER, ASSISTANT]})
        model.resize_token_embeddings(len(tok))
    tok.chat_template = CHAT_TEMPLATE


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


def check_vocab(tok, examples: list[Example]) -> None:
    unk = {c for ex in examples for c in ex.prompt + ex.completion
           if tok.convert_tokens_to_ids(c) == tok.unk_token_id and tok(c, add_special_tokens=False)["input_ids"] == [tok.unk_token_id]}
    if unk:
        raise UserError(f"The base model's tokenizer cannot encode {' '.join(sorted(unk))!s}. Remove these "
                        "characters from the data, or pick a base trained with a byte-level BPE tokenizer.")


@torch.no_grad()
def answer(model, tok, prompt: str, greedy: bool = True, max_new_tokens: int = 32, seed: int = 0) -> str:
    text = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False)
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    ids = ids[:, -(context_length(model) - max_new_tokens):]
    torch.manual_seed(seed)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                         do_sample=not greedy, temperature=None if greedy else 0.8, top_k=None, top_p=None,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def load_base(cfg: SFTConfig):
    path = runs.find_run(cfg.base, "pretrain")
    model, tok, info = runs.load_run(path)
    if info.objective != "clm":
        raise UserError("SFT needs a GPT-style (next-token) base; this run is BERT-style. Pick another base.")
    return path, model, tok, info


def run(cfg: SFTConfig, job, examples: list[Example] | None = None, owner: str | None = None, save: bool = True):
    examples = examples if examples is not None else default_examples(cfg)
    train_ex = [e for e in examples if e.split == "train"]
    test_ex = [e for e in examples if e.split == "test"]
    if not train_ex:
        raise UserError("There are no training examples: add rows with split 'train'.")
    if len(train_ex) < 2:
        raise UserError("One example is not enough to tune on: add a few more rows.")
    base_path, model, tok, info = load_base(cfg)
    check_vocab(tok, examples)
    add_chat_template(model, tok)
    ctx = context_length(model)
    enc = [encode(tok, e, cfg.mask_prompt, ctx) for e in train_ex]
    test_enc = [encode(tok, e, True, ctx)[0] for e in test_ex]   # held-out scoring counts answers only
    n_cut = sum(c for _, c in enc)
    collate = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100, return_tensors="pt")
    gen = torch.Generator().manual_seed(cfg.seed)
    base_val = _base_val_batches(info)
    fams = sorted({e.family for e in test_ex})

    def next_batch(step):
        idx = torch.randint(len(enc), (cfg.batch_size,), generator=gen).tolist()
        return dict(collate([enc[i][0] for i in idx]))

    def loss_fn(model, batch):
        out = model(**batch)
        return out.loss, {"mean_token_accuracy": _token_accuracy(out.logits, batch["labels"])}

    def evaluate(step, final):
        m = {}
        if test_enc:
            m.update(score(model, tok, collate, test_enc, [e.family for e in test_ex], fams))
        if base_val:
            m["base_val_loss"] = sum(model(input_ids=x, labels=x).loss.item() for x in base_val) / len(base_val)
        return m

    facts = {"params": model.num_parameters(), "base": base_path.name, "train_examples": len(train_ex),
             "test_examples": len(test_ex), "truncated": n_cut, "families": fams, "mask_prompt": cfg.mask_prompt}
    if hasattr(job, "info"):
        job.info.update(facts)
    settings = LoopSettings(steps=cfg.steps, lr=cfg.lr, warmup_steps=min(cfg.warmup, cfg.steps),
                            eval_every=cfg.eval_every, max_seconds=cfg.max_seconds, bf16=cfg.bf16)
    result = train(model, loss_fn, next_batch, settings, job, evaluate)
    if result.status == "diverged":
        raise UserError(result.message)
    notes = [result.message] if result.message else []
    if n_cut:
        notes.append(f"{n_cut} training examples were longer than the context of {ctx} tokens and were cut from the left")
    if hasattr(job, "message"):
        job.message = "; ".join(notes)
    model.eval()
    if not save:
        return model, tok
    records = list(getattr(job, "records", []))
    last = next((r for r in reversed(records) if "eval_accuracy" in r), {})
    summary = {**facts, "status": result.status, "steps": result.steps, "seconds": round(result.seconds, 1),
               "eval_accuracy": last.get("eval_accuracy")}
    return str(runs.save_run(model, tok, "sft", cfg.to_dict(), records, summary,
                             name=f"{'masked' if cfg.mask_prompt else 'unmasked'}-{cfg.key()[:6]}",
                             parent=base_path.name, owner=owner))


def _token_accuracy(logits, labels) -> float:
    pred, gold = logits[:, :-1].argmax(-1), labels[:, 1:]
    keep = gold != -100
    return (pred[keep] == gold[keep]).float().mean().item() if keep.any() else 0.0


def score(model, tok, collate, encoded: list[dict], families: list[str], fams: list[str]) -> dict:
    """Held-out loss and accuracy. An answer counts as right when every answer token, and the
    end token, is the model's top choice given the right prefix: exactly when greedy decoding
    would write that answer. One forward pass instead of generation."""
    total, right, tok_right, tok_n, losses = {}, {}, 0, 0, []
    for i in range(0, len(encoded), 64):
        b = collate(encoded[i:i + 64])
        out = model(**b)
        losses.append(out.loss.item() * (b["labels"][:, 1:] != -100).sum().item())
        pred, gold = out.logits[:, :-1].argmax(-1), b["labels"][:, 1:]
        keep = gold != -100
        ok = ((pred == gold) | ~keep).all(-1)
        tok_right += (pred[keep] == gold[keep]).sum().item()
        tok_n += keep.sum().item()
        for f, good in zip(families[i:i + 64], ok.tolist()):
            total[f] = total.get(f, 0) + 1
            right[f] = right.get(f, 0) + good
    m = {"eval_loss": sum(losses) / max(1, tok_n), "eval_mean_token_accuracy": tok_right / max(1, tok_n),
         "eval_accuracy": sum(right.values()) / max(1, sum(total.values()))}
    m.update({f"eval_accuracy/{f}": right[f] / total[f] for f in fams})
    return m


def _base_val_batches(info) -> list[torch.Tensor]:
    """A few windows of the base's own validation text, to watch for forgetting."""
    pcfg = PretrainConfig.from_dict(info.config)
    if pcfg.corpus not in ("world", "python-docs"):
        return []   # an uploaded corpus is not kept with the run
    data = prepare(pcfg, load_text(pcfg))
    T = pcfg.block_size
    starts = torch.linspace(0, len(data.val) - T, 32).long()
    return [windows(data.val, starts[i:i + 16], T) for i in range(0, 32, 16)]


def scores_before_after(base_model, tuned_model, tok_base, tok_tuned, examples: list[Example], n: int = 3,
                        seed: int = 0) -> list[dict]:
    """The same held-out prompts answered by the base and the tuned model, greedy and sampled."""
    rows = []
    picked = {}
    for e in examples:
        if e.split == "test" and len(picked.setdefault(e.family, [])) < n:
            picked[e.family].append(e)
    base_tok = tok_base
    if USER not in base_tok.get_vocab():  # the base has never seen the roles: give it the same template text
        base_tok = tok_tuned
        base_model = _with_vocab(base_model, len(tok_tuned))
    for fam, exs in picked.items():
        for e in exs:
            row = {"family": fam, "prompt": e.prompt, "expected": e.completion}
            for name, m, t in (("base", base_model, base_tok), ("tuned", tuned_model, tok_tuned)):
                row[f"{name} (greedy)"] = answer(m, t, e.prompt, greedy=True)
                row[f"{name} (sampled)"] = answer(m, t, e.prompt, greedy=False, seed=seed)
            rows.append(row)
    return rows


def _with_vocab(model, n: int):
    import copy
    m = copy.deepcopy(model)
    m.resize_token_embeddings(n)
    return m


def accuracy(rows: list[dict], column: str) -> float:
    return sum(r[column] == r["expected"] for r in rows) / max(1, len(rows))

