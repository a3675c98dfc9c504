"""The RLHF stage: losses against the published formulas, preferences, learning, saving, bad input."""
import json
import math

import pytest
import torch

from engine.core import runs
from engine.core.config import UserError
from engine.core.report import Recorder
from engine.rlhf import losses, models, preferences, recipe
from engine.rlhf.config import RLHFConfig
from engine.rlhf.dpo import fit_dpo
from engine.rlhf.policy import save_policy
from engine.rlhf.ppo import fit_ppo
from engine.rlhf.preferences import Pair
from engine.rlhf.reward_model import fit_reward_model, save_reward_model

FAST = RLHFConfig(n_pairs=120, rm_steps=40, steps=30, lr=1e-4, eval_every=15, batch_size=16, max_seconds=60)
DPO = FAST.replace(method="dpo")


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.fixture(scope="module")
def pairs():
    return recipe.simulated_pairs(FAST)


def test_bradley_terry_loss_is_ouyang_eq1():
    rc, rr = [1.5, -0.2, 0.3], [0.5, 0.7, 0.3]
    # loss(theta) = -E[log sigma(r(x, y_w) - r(x, y_l))], Ouyang et al. 2022, eq. 1 (K = 2: one pair per prompt)
    expected = -sum(math.log(sigmoid(a - b)) for a, b in zip(rc, rr)) / 3
    got = losses.bradley_terry_loss(torch.tensor(rc), torch.tensor(rr)).item()
    assert got == pytest.approx(expected, rel=1e-6)
    assert losses.bradley_terry_loss(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(math.log(2))


def test_dpo_loss_is_rafailov_eq7():
    pc, pr, rc, rr, beta = [-3.0, -7.5], [-4.0, -2.0], [-3.5, -6.0], [-3.0, -2.5], 0.1
    # L_DPO = -E[log sigma(beta log pi(y_w)/ref(y_w) - beta log pi(y_l)/ref(y_l))], Rafailov et al. 2023, eq. 7
    expected = -sum(math.log(sigmoid(beta * (a - c) - beta * (b - d))) for a, b, c, d in zip(pc, pr, rc, rr)) / 2
    loss, chosen, rejected = losses.dpo_loss(*map(torch.tensor, (pc, pr, rc, rr)), beta)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert chosen.tolist() == pytest.approx([0.05, -0.15])     # beta·(log pi - log ref): TRL's rewards/chosen
    assert rejected.tolist() == pytest.approx([-0.1, 0.05])


def test_ppo_clipped_objective_on_hand_made_numbers():
    # ratios 1.5, 0.5, 1.5, 0.5 with advantages +1, +1, -1, -1 and epsilon 0.2 (Schulman et al. 2017, eq. 7):
    # min(1.5, 1.2) = 1.2; min(0.5, 0.8) = 0.5; min(-1.5, -1.2) = -1.5; min(-0.5, -0.8) = -0.8
    logps = torch.log(torch.tensor([[1.5], [0.5], [1.5], [0.5]]))
    loss, clipfrac = losses.ppo_clip_loss(logps, torch.zeros(4, 1), torch.tensor([1.0, 1.0, -1.0, -1.0]),
                                        torch.ones(4, 1, dtype=torch.bool), clip=0.2)
    assert loss.item() == pytest.approx(-(1.2 + 0.5 - 1.5 - 0.8) / 4)
    assert clipfrac == 0.5                                        # the clip binds in the first and last case
    # padding does not count: a masked token changes nothing
    padded, _ = losses.ppo_clip_loss(torch.cat([logps, torch.full((4, 1), 5.0)], 1), torch.zeros(4, 2),
                                   torch.tensor([1.0, 1.0, -1.0, -1.0]),
                                   torch.tensor([[True, False]] * 4), clip=0.2)
    assert padded.item() == pytest.approx(loss.item())


def test_kl_penalty_and_advantages_on_hand_made_numbers():
    logps = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]])
    ref = torch.tensor([[-1.5, -1.0, -9.0], [-1.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    total, kl = losses.penalised_rewards(torch.tensor([2.0, 1.0]), logps, ref, mask, kl_coef=0.1)
    assert kl.tolist() == pytest.approx([0.5 - 1.0, 0.5])       # sum of log pi - log ref over the answer
    assert total.tolist() == pytest.approx([2.0 + 0.05, 1.0 - 0.05])   # r - beta·KL (Ouyang et al. 2022, eq. 2)
    # TRL's policy/approxkl_avg: 0.5·mean((new - old)²) over answer tokens; 0 for an unchanged policy
    new = torch.tensor([[-1.2, -1.5, 0.0], [-0.5, 0.0, 0.0]])
    assert losses.approx_kl(new, logps, mask) == pytest.approx(0.5 * (0.2 ** 2 + 0.5 ** 2 + 0.0) / 3)
    assert losses.approx_kl(logps, logps, mask) == 0.0
    adv = losses.group_advantages(torch.tensor([1.0, 3.0, 10.0, 10.0]), k=2)
    assert adv[2:].tolist() == [0.0, 0.0]                         # equal answers to one prompt: nothing to learn
    assert adv[0].item() < 0 < adv[1].item()


def test_gold_reward_and_well_formed_text():
    assert preferences.well_formed("Tom has a horse.")
    for bad in ("", "Tom Tom has a horse.", "Tom has a horse.\nOnce upon", "Tom has a zorse.", "has a horse."):
        assert not preferences.well_formed(bad), bad
    assert preferences.gold_reward("animal", "Who is Tom?", "Tom has a horse.") == 1.0
    assert preferences.gold_reward("animal", "Who is Tom?", "Tom is a singer.") == 0.0
    # an animal, but degenerate and not about Tom: 1 - 1 - 1
    assert preferences.gold_reward("animal", "Who is Tom?", "horse horse horse") == -1.0
    # well formed and an animal, but about someone else: the collapse to one sentence for every question
    assert preferences.gold_reward("animal", "Who is Tom?", "Dan has a dog.") == 0.0
    assert preferences.gold_reward("animal", "Describe Dan.", "Dan has a dog.") == 1.0
    assert preferences.person_asked("What does Tom have?") == "Tom" and preferences.person_asked("Hi") is None
    assert preferences.gold_reward("colour", "", "Tom has a yellow boat.") == 1.0   # no one asked: not checked
    assert preferences.gold_reward("short", "", "Tom has a horse.") == pytest.approx(-16 / 30)
    with pytest.raises(UserError, match="Unknown taste"):
        preferences.gold_fn("spicy")


def test_simulated_labeler_prefers_by_its_taste_with_the_stated_noise(pairs):
    assert len(pairs) == FAST.n_pairs
    gold = preferences.gold_fn(FAST.taste)
    right = sum(gold(p.prompt, p.chosen) > gold(p.prompt, p.rejected) for p in pairs) / len(pairs)
    assert abs(right - (1 - FAST.noise)) < 0.07                  # the noise flips its share of the labels
    assert all(p.chosen != p.rejected for p in pairs)             # ties are not kept


def test_labels_round_trip_through_trl_jsonl_and_ties_carry_no_preference():
    labels = [{"prompt": "Who is Tom?", "a": "Tom has a horse.", "b": "Tom is a singer.", "choice": "A"},
              {"prompt": "Who is Tom?", "a": "Tom is a singer.", "b": "Tom has a horse.", "choice": "B"},
              {"prompt": "Who is Mia?", "a": "Mia likes soup.", "b": "Mia is a baker.", "choice": "tie"}]
    text = preferences.labels_to_jsonl(labels)
    assert [json.loads(line)["chosen"] for line in text.splitlines()][:2] == ["Tom has a horse."] * 2
    pairs, problems = preferences.parse_jsonl(text.encode())
    assert pairs == [Pair("Who is Tom?", "Tom has a horse.", "Tom is a singer.")] * 2
    assert problems == ["line 3: a tie, which says neither answer is better"]
    assert preferences.pairs_from_labels(labels)[1] == 1
    chat = json.dumps({"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "A"}],
                       "rejected": [{"role": "assistant", "content": "B"}]})
    assert preferences.parse_jsonl(chat.encode())[0] == [Pair("Hi", "A", "B")]
    with pytest.raises(UserError, match="No usable pairs"):
        preferences.parse_jsonl(b'{"prompt": "x", "chosen": "same", "rejected": "same"}\n{bad')


def test_reward_model_ranks_held_out_pairs_above_chance_and_is_saved(pairs):
    rec = Recorder()
    path = save_reward_model(fit_reward_model(FAST, rec, pairs, gold=preferences.gold_fn(FAST.taste)), FAST, pairs).run
    evals = [r for r in rec.records if "eval_accuracy" in r]
    kept = rec.info["kept"]                                       # early stopping on the validation split only
    assert kept["val_accuracy"] == max(r["val_accuracy"] for r in evals[1:])
    best = next(r for r in evals[1:] if r["step"] == kept["kept_step"])
    assert kept["eval_accuracy"] == best["eval_accuracy"] > 0.7 and kept["eval_gold_accuracy"] > 0.7
    assert rec.info["val_pairs"] > 0 and rec.info["train_pairs"] + rec.info["val_pairs"] + rec.info["test_pairs"] \
        == len(pairs)
    info = runs.read_info(path)
    assert info.summary["eval_accuracy"] == kept["eval_accuracy"]
    assert info.stage == "reward" and info.parent == "sft-base"
    rm, tok = models.load_reward_model(path)
    assert type(rm).__name__ == "GPT2ForSequenceClassification" and rm.config.num_labels == 1
    good, bad = models.score(rm, tok, "Who is Tom?", ["Tom has a horse.", "Tom is a singer."])
    assert good > bad                                             # the taste: animals
    assert len(preferences.parse_jsonl((info.path / "preferences.jsonl").read_bytes())[0]) == len(pairs)
    shown = [r["prompt"] for r in rec.info["examples"]]                # one pair per test question, 8 at most
    test_questions = {p.prompt for p in preferences.split_pairs(preferences.usable(pairs)[0])[1]}
    assert len(shown) == len(set(shown)) == min(8, len(test_questions))


def test_dpo_raises_the_gold_reward_and_chosen_rewards_can_fall(pairs):
    rec = Recorder()
    path = save_policy(fit_dpo(DPO, rec, pairs, gold=preferences.gold_fn(FAST.taste)), DPO).run
    ev = [r for r in rec.records if "eval_gold_reward" in r]
    assert ev[-1]["eval_gold_reward"] > ev[0]["eval_gold_reward"] + 0.3
    assert ev[-1]["eval_rewards/margins"] > 0 and ev[-1]["eval_rewards/accuracies"] > 0.6
    steps = [r for r in rec.records if "rewards/chosen" in r]
    assert {"rewards/rejected", "rewards/margins", "rewards/accuracies"} <= set(steps[-1])
    info = runs.read_info(path)
    assert info.stage == "rlhf" and info.parent == "sft-base" and info.config["method"] == "dpo"
    assert rec.info["before_after"][0].keys() >= {"prompt", "SFT", "tuned", "SFT gold", "tuned gold"}


def test_ppo_streams_trl_metrics_and_its_first_update_per_rollout_is_unclipped(pairs):
    rm = fit_reward_model(FAST.replace(rm_steps=10), Recorder(), pairs).model
    rec = Recorder()
    cfg = FAST.replace(method="ppo", steps=8, ppo_epochs=4, prompts_per_step=2, samples_per_prompt=4)
    fit_ppo(cfg, rec, rm, gold=preferences.gold_fn(FAST.taste))
    steps = [r for r in rec.records if "loss" in r]
    assert len(steps) == 8
    for r in steps:
        assert {"objective/rlhf_reward", "objective/kl", "objective/entropy", "objective/scores", "gold_reward"} <= set(r)
    assert steps[0]["objective/kl"] == pytest.approx(0, abs=1e-6)  # the policy starts as the reference
    assert steps[0]["policy/clipfrac_avg"] == 0 and steps[4]["policy/clipfrac_avg"] == 0   # ratio 1 on a fresh rollout
    assert "eval_gold_reward" in rec.records[-1] and "eval_scores" in rec.records[-1]


def test_too_few_identical_and_tied_pairs_are_refused_with_a_clear_message():
    same = [Pair("Who is Tom?", "Tom has a horse.", "Tom has a horse.")] * 20
    with pytest.raises(UserError, match="0 usable preference pairs.*same answer"):
        fit_reward_model(FAST, Recorder(), same)
    labels = [{"prompt": "Who is Tom?", "a": "x", "b": "y", "choice": "tie"}] * 12
    with pytest.raises(UserError, match="at least 8"):
        fit_dpo(FAST, Recorder(), preferences.pairs_from_labels(labels)[0])


def test_fewer_pairs_than_a_batch_train_on_all_of_them_and_say_so(pairs):
    trained = fit_reward_model(FAST.replace(batch_size=64, rm_steps=2), Recorder(), pairs[:12])
    assert "fewer than a batch of 64" in trained.loop.message


def test_a_diverging_run_stops_with_a_clear_message(pairs):
    with pytest.raises(UserError, match="lower the learning rate"):
        fit_dpo(FAST.replace(lr=10.0, steps=20, eval_every=100), Recorder(), pairs)


def test_the_labeler_compares_different_answers_several_to_a_question(pairs):
    # As InstructGPT's rankings (K answers give C(K, 2) pairs): a question visited once gives up to 6 pairs,
    # and two identical answers are never compared.
    assert all(p.chosen != p.rejected for p in pairs)
    per_question = {}
    for p in pairs:
        per_question[p.prompt] = per_question.get(p.prompt, 0) + 1
    assert max(per_question.values()) > 1


def test_batched_sampling_gives_each_prompt_its_own_answers():
    _, model, tok = models.load_policy("")
    got = preferences.sample_many(model, tok, ["Who is Tom?", "Tell me about Mia."], 4, seed=3)
    assert [len(a) for _, a in got] == [4, 4]
    # The prompt as the model read it: each row's own ids, the left padding left out.
    assert got[0][0] == preferences.prompt_ids(tok, "Who is Tom?", 64, 32)
    texts = [preferences.text_of(tok, a) for a in got[0][1]]
    assert sum(t.startswith("Tom") for t in texts) >= 2                 # answers about the person asked


def test_ppo_with_no_reward_model_trains_one_first_in_the_same_job(runs_dir, monkeypatch):
    monkeypatch.setattr(recipe, "_SIMULATED", {})   # labels not made yet in this process (other tests make them)
    rec = Recorder()
    cfg = FAST.replace(method="ppo", lr=3e-4, steps=8, eval_every=4, ppo_epochs=2, prompts_per_step=2,
                       samples_per_prompt=4, rm_steps=10, n_pairs=60)   # labelling shows its progress
    out = recipe.run_policy(cfg, rec, owner="someone")
    parts = [r.get("part") for r in rec.records if "loss" in r]
    assert parts == ["reward model"] * 10 + ["policy"] * 8             # one job, one progress bar: 18 steps
    assert [r["step"] for r in rec.records if "loss" in r] == list(range(1, 19))
    assert {"kept", "labels", "train_pairs"} <= set(rec.info["reward_training"])   # the reward model's facts
    assert rec.preparing[0].startswith("the simulated labeler") and rec.preparing[1] == rec.preparing[2]
    rm = models.find_reward("", "sft-base", "someone")                  # saved as this owner's reward run
    assert runs.read_info(out.run).config["reward"] == rm.name


def _evals(rec: Recorder) -> list[dict]:
    return [r for r in rec.records if r.get("part") == "policy" and "eval_gold_reward" in r]


def test_without_the_leash_ppo_hacks_the_reward_model_and_with_it_the_gold_rises():
    """The page's recorded runs and its one-click experiment (Gao, Schulman & Hilton 2022): with no KL
    penalty and a higher learning rate the reward model's score rises while the gold reward falls
    below the SFT model's; with the quick demo's leash both rise."""
    hacked, leashed = Recorder(), Recorder()
    recipe.demo(recipe.HACKING, hacked)
    ev = _evals(hacked)
    assert ev[0]["step"] == recipe.HACKING.rm_steps and ev[-1]["part_step"] == recipe.HACKING.steps
    assert ev[-1]["eval_scores"] > ev[0]["eval_scores"] + 1.0           # proxy up
    assert ev[-1]["eval_gold_reward"] < ev[0]["eval_gold_reward"] - 0.5   # gold down, below the SFT model
    tr = [r for r in hacked.records if r.get("part") == "policy" and "loss" in r]
    first, last = tr[:8], tr[-8:]
    mean = lambda rs, k: sum(r[k] for r in rs) / len(rs)  # noqa: E731
    assert mean(last, "objective/scores") > mean(first, "objective/scores")
    assert mean(last, "gold_reward") < mean(first, "gold_reward")
    recipe.demo(recipe.QUICK, leashed)
    ev = _evals(leashed)
    assert ev[-1]["eval_scores"] > ev[0]["eval_scores"] and ev[-1]["eval_gold_reward"] > ev[0]["eval_gold_reward"] + 0.3
