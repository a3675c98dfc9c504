"""The policy and reward models: which runs they come from, how an answer is encoded, and how
the reward model scores it. The policy is a chat model (an SFT run); the reward model is
transformers' sequence classifier with one output."""
from __future__ import annotations

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorForSeq2Seq

from engine.core import runs
from engine.core.config import UserError
from engine.core.models import GLOBAL_RNG as model_lock
from engine.core.sampling import context_length
from engine.sft import encode
from engine.text.instructions import Example


def parent_path(parent: str):
    """The policy run to start from: a run by folder name, or the baked SFT run."""
    return runs.find_run(parent, None) if parent else runs.find_run("", "sft")


def load_policy(parent: str):
    path = parent_path(parent)
    model, tok, info = runs.load_run(path)
    if info.objective != "clm" or tok.chat_template is None:
        raise UserError(f"{path.name} is not a chat model: RLHF starts from an SFT run. Pick one.")
    return path, model, tok


def load_reward_model(path):
    """A reward run: transformers' sequence classifier with one output."""
    with model_lock:
        model = AutoModelForSequenceClassification.from_pretrained(path, attn_implementation="eager",
                                                                   dtype=torch.float32)
    model.eval()
    return model, AutoTokenizer.from_pretrained(path)


def reward_model_from(policy_path, seed: int):
    """The SFT model's body with a fresh one-output head (InstructGPT starts its reward model
    from the SFT model with the unembedding replaced by a scalar head: Ouyang et al. 2022, 3.5)."""
    with model_lock:
        torch.manual_seed(seed)   # the new head's initial weights
        model = AutoModelForSequenceClassification.from_pretrained(
            policy_path, num_labels=1, attn_implementation="eager", dtype=torch.float32)
    model.config.pad_token_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    return model


def find_reward(name: str, parent_name: str, owner: str | None, also=()):
    """A reward run by name, or the newest one of this owner's (or named in `also`, as
    runs.list_runs) trained on `parent_name`'s answers."""
    if name:
        return runs.find_run(name, "reward")
    for info in runs.list_runs("reward", owner=owner, also=also):
        if info.parent == parent_name:
            return info.path
    raise UserError("PPO needs a reward model: train one in step 2 first (or pick DPO, which needs none).")


def encode_answer(tok, prompt: str, answer_text: str, ctx: int) -> dict:
    """input_ids and labels of prompt + answer in the chat template, the answer's tokens labelled."""
    return encode(tok, Example("rlhf", prompt, answer_text), mask_prompt=True, max_len=ctx)[0]


def collate(tok):
    """Pads a list of encoded answers into one batch (labels padded with -100)."""
    return DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100, return_tensors="pt")


def token_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each labelled token (zero elsewhere) and the mask of labelled tokens."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    lp = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return lp * mask, mask


def pair_batch(collate, encoded: list[tuple[dict, dict]]) -> dict:
    """Chosen rows first, then rejected rows, padded together."""
    return dict(collate([c for c, _ in encoded] + [r for _, r in encoded]))


def rewards(rm, batch: dict) -> torch.Tensor:
    return rm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0].float()


@torch.no_grad()
def score(rm, tok, prompt: str, answers: list[str], bf16: bool = True) -> list[float]:
    """The reward model's score of each answer to `prompt`."""
    ctx = context_length(rm)
    b = dict(collate(tok)([encode_answer(tok, prompt, a, ctx) for a in answers]))
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        return rewards(rm, b).tolist()


