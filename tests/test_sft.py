"""The SFT stage: instruction data, chat template, loss masking, learning, saving, bad input."""
import json

import pytest

from engine import sft
from engine.core import report, runs
from engine.core.config import UserError
from engine.sft import SFTConfig
from engine.text import corpus, instructions
from engine.text.instructions import Example


class Recorder(report.Recorder):
    def evals(self):
        return [r for r in self.records if "eval_accuracy" in r]


@pytest.fixture(scope="module")
def chat():
    _, model, tok, _ = sft.load_base(SFTConfig())
    return model, sft.add_chat_template(model, tok, seed=0)


def test_labels_mask_exactly_the_prompt_tokens(chat):
    _, tok = chat
    ex = Example("copy", "Repeat: red hat", "red hat")
    prompt_ids = tok(tok.apply_chat_template([{"role": "user", "content": ex.prompt}], add_generation_prompt=True,
                                             tokenize=False), add_special_tokens=False)["input_ids"]
    enc, cut = sft.encode(tok, ex, mask_prompt=True, max_len=64)
    assert not cut and enc["input_ids"][:len(prompt_ids)] == prompt_ids
    assert enc["labels"] == [-100] * len(prompt_ids) + enc["input_ids"][len(prompt_ids):]
    assert tok.decode(enc["input_ids"][len(prompt_ids):]) == "red hat<eos>"      # the answer and its end
    unmasked, _ = sft.encode(tok, ex, mask_prompt=False, max_len=64)
    assert unmasked["labels"] == unmasked["input_ids"]
    view = sft.token_view(tok, ex, True, 64)
    assert "".join(p for p, counted in view if counted) == "red hat<eos>"


def test_long_examples_keep_their_answer_and_are_counted(chat):
    _, tok = chat
    long = Example("copy", "Repeat: " + "red hat " * 12 + "cup", "cup")
    enc, cut = sft.encode(tok, long, True, 64)
    assert cut and len(enc["input_ids"]) == 64
    assert tok.decode([t for t in enc["labels"] if t != -100]) == "cup<eos>"
    assert sft.count_truncated(tok, [long, Example("copy", "Repeat: a", "a")], 64) == 1


def test_chat_template_round_trips(chat):
    _, tok = chat
    msgs = [{"role": "user", "content": "Where does Mia live?"}, {"role": "assistant", "content": "Mia lives on the hill."}]
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert text == "<|user|>Where does Mia live?<|assistant|>Mia lives on the hill.<eos>"
    ids = tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"]
    assert tok.decode(ids) == text
    assert tok.convert_ids_to_tokens(ids[:1]) == ["<|user|>"]             # the roles are single tokens
    head, answer = text.removeprefix("<|user|>").removesuffix("<eos>").split("<|assistant|>")
    assert [head, answer] == [m["content"] for m in msgs]


def test_data_families_have_fair_held_out_splits():
    ex = instructions.build(0, 300)
    for fam in instructions.FAMILIES:
        train = {e.prompt for e in ex if e.family == fam and e.split == "train"}
        test = {e.prompt for e in ex if e.family == fam and e.split == "test"}
        assert len(test) >= 40 and train and not train & test, fam
    facts_train = {e.completion for e in ex if e.family == "facts" and e.split == "train"}
    facts_test = {e.completion for e in ex if e.family == "facts" and e.split == "test"}
    assert not facts_train & facts_test                  # held-out facts are never asked about in training
    text = corpus.world_text()
    assert all(a in text for a in facts_test)          # ... but the base model read every one of them


def test_short_run_beats_the_base_saves_and_reloads():
    """A 250-step run on three families: the base gets (nearly) nothing right in the template;
    the tuned model gets at least 30 points more of the held-out prompts."""
    rec = Recorder()
    cfg = SFTConfig(families="label,facts,pattern", n_train=300, steps=250, eval_every=125, max_seconds=200)
    path = sft.run(cfg, rec).run
    before, after = rec.evals()[0], rec.evals()[-1]
    assert before["eval_accuracy"] <= 0.05
    assert after["eval_accuracy"] >= before["eval_accuracy"] + 0.3, after
    assert after["base_eval_loss"] < 2.0                   # replay keeps the corpus well below ln(V) = 4.6
    assert rec.info["before_after"] and {"base (greedy)", "tuned (sampled)"} <= set(rec.info["before_after"][0])
    model, tok, info = runs.load_run(path)
    assert info.stage == "sft" and info.parent == "pretrain-base-gpt" and info.summary["eval_accuracy"] > 0.3
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                   tokenize=False) == "<|user|>hi<|assistant|>"
    label_rows = [r for r in rec.info["before_after"] if r["family"] == "label"]
    assert any(sft.answer(model, tok, r["prompt"]) == r["expected"] for r in label_rows)
    from transformers import AutoModelForCausalLM
    assert AutoModelForCausalLM.from_pretrained(path).config.vocab_size == len(tok)


def test_masking_changes_what_is_learned_and_the_sweep_plots_points():
    masked, unmasked = Recorder(), Recorder()
    cfg = SFTConfig(families="label", n_train=50, steps=30, eval_every=30, replay=0.0)
    for one, rec in zip(cfg.replace(compare_masking=True).variants(), (masked, unmasked)):
        sft.fit(one, rec)
    # Unmasked, every token of the row is a label: several times as many tokens count.
    first = lambda r, k: next(x[k] for x in r.records if "loss" in x)  # noqa: E731
    assert first(unmasked, "num_tokens") > 3 * first(masked, "num_tokens")
    assert first(unmasked, "loss") != first(masked, "loss")
    sweep = Recorder()
    sft.sweep(cfg.replace(sweep_sizes="5,20", steps=10, eval_every=10), sweep)
    points = [r for r in sweep.records if "n_train" in r]
    assert [p["n_train"] for p in points] == [5, 20] and "eval_accuracy/label" in points[0]
    assert [r["step"] for r in sweep.records if "loss" in r][-1] == 20         # progress spans both points


def test_jsonl_bad_lines_are_reported_by_number_and_the_rest_used():
    lines = [json.dumps({"prompt": "Repeat: a", "completion": "a"}),
             "{not json",
             json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}),
             json.dumps({"prompt": "empty answer", "completion": " "}),
             json.dumps({"prompt": [{"role": "user", "content": "q"}],
                         "completion": [{"role": "assistant", "content": "a"}]}),
             json.dumps({"text": "no prompt here"}),
             json.dumps({"prompt": "p", "completion": "c", "split": "dev"})]
    rows, problems = instructions.parse_jsonl("\n".join(lines).encode())
    assert [(r.prompt, r.completion) for r in rows] == [("Repeat: a", "a"), ("hi", "hello"), ("q", "a")]
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 4", "line 6", "line 7"]
    assert "answer is empty" in problems[1]
    with pytest.raises(UserError, match="No usable rows"):
        instructions.parse_jsonl(b"{}\n[1, 2]\n")
    with pytest.raises(UserError, match="UTF-8"):
        instructions.parse_jsonl(b"\xff\xfe{")


def test_table_rows_with_empty_prompt_or_answer_are_left_out_with_their_row_number():
    rows = [{"family": "copy", "prompt": "Repeat: a", "completion": "a", "split": "train"},
            {"family": "copy", "prompt": "", "completion": "a", "split": "train"},
            {"family": None, "prompt": "Repeat: b", "completion": float("nan"), "split": "test"}]
    ex, problems = instructions.from_rows(rows)
    assert len(ex) == 1 and problems == ["row 2: the prompt is empty", "row 3: the answer is empty"]


def test_characters_the_base_cannot_encode_are_named_before_training():
    bad = [Example("x", "Repeat: café", "café ✓"), Example("x", "Repeat: a", "a")]
    with pytest.raises(UserError, match="cannot encode 'é' '✓'"):
        sft.fit(SFTConfig(steps=5), Recorder(), bad)
    with pytest.raises(UserError, match="fewer than two training rows"):
        sft.fit(SFTConfig(steps=5), Recorder(), [Example("x", "a", "b")])


def test_config_round_trips_through_the_url():
    cfg = SFTConfig(families="facts,label", mask_prompt=False, replay=0.5, lr=1e-3, sweep_sizes="10,50")
    back, problems = SFTConfig.from_params(cfg.to_params())
    assert back == cfg and not problems
    with pytest.raises(UserError, match="Unknown task family"):
        SFTConfig(families="facts,poetry").family_list()
    with pytest.raises(UserError, match="whole numbers"):
        SFTConfig(sweep_sizes="ten").sizes()


def test_batched_answers_are_the_answers_one_at_a_time():
    """The before/after tables answer many prompts in a few left-padded generate calls: the same
    greedy answers as one prompt at a time, prompts of every length included."""
    model, tok, _ = runs.load_run(runs.find_run("", "sft"))
    prompts = [e.prompt for e in instructions.build(0, 10) if e.split == "test"][::7] + ["Repeat: " + "red " * 20]
    assert sft.answers(model, tok, prompts) == [sft.answer(model, tok, p) for p in prompts]
