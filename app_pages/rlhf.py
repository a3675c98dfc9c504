"""RLHF: preferences, a reward model, and a policy pulled toward them (PPO or DPO), trained live."""
import html

import pandas as pd
import streamlit as st

from app_pages import ui
from engine.core import limits, runs
from engine.core.config import UserError
from engine.core.report import Task
from engine.rlhf import config, models, preferences, recipe
from engine.rlhf.config import RLHFConfig
from engine.rlhf.preferences import TASTES

P = "rl"            # widget-key prefix and the policy job's slot
RM = "rl_rm"        # the reward model's job slot
LABELS = "rl_labels"   # a person's clicks: not a widget key, so they survive reruns and page switches
ui.init_config(RLHFConfig, P)
hlp = lambda name: ui.widget_help(RLHFConfig, name)  # noqa: E731
st.session_state.setdefault(LABELS, [])

st.title("RLHF: learning from preferences")
st.markdown(
    "SFT taught the model to answer. People cannot easily *write* the best answer, but they can say which of two "
    "answers they prefer. InstructGPT (Ouyang et al. 2022) turns such comparisons into a **reward model** and then "
    "optimises the SFT model against it with **PPO**, held near the SFT model by a KL penalty. **DPO** (Rafailov "
    "et al. 2023) gets the same kind of policy straight from the pairs, with no reward model. All of it trains "
    "live below, on the SFT model's own answers to questions about the people of the small world.")
st.info(
    "**Common claim, checked: “LLaMA was trained with RLHF.”** Not the first LLaMA. LLaMA (Touvron et al., Feb "
    "2023, arXiv:2302.13971) was released as base models trained only to predict the next token; its paper adds "
    "one brief instruction-tuning experiment (§4) and no RLHF. **Llama 2-Chat** was SFT, then RLHF: "
    "rejection-sampling fine-tuning and PPO against reward models trained on human comparisons (Touvron et al., "
    "Jul 2023, arXiv:2307.09288, §3). **Llama 3**'s post-training was rounds of SFT, rejection sampling and DPO; "
    "its authors tried PPO but found DPO needed less compute at scale and performed better (Llama Team, 'The "
    "Llama 3 Herd of Models', 2024, arXiv:2407.21783, §4).", icon=":material/fact_check:")


# --- 1. preferences --------------------------------------------------------------------------------
st.header("1 · Preferences")
ui.preset_picker(RLHFConfig, P)
sfts = ui.my_runs("sft")
c1, c2 = st.columns([3, 3])
c1.selectbox("Start from the SFT run", [""] + [r.path.name for r in sfts if not r.baked], key=f"{P}.parent",
             help=hlp("parent"), format_func=lambda n: n or "the baked SFT run (sft-base)")
c2.radio("Who compares the answers", config.SOURCES, key=f"{P}.source", horizontal=True, help=hlp("source"),
         format_func={"simulated": "a simulated labeler", "human": "you", "upload": "a file"}.get)
cfg: RLHFConfig = ui.read_config(RLHFConfig, P)
try:
    parent_path = str(models.parent_path(cfg.parent))
except UserError as e:
    st.error(str(e), icon=":material/error:")
    st.stop()

pairs: list[preferences.Pair] | None = None   # None: the simulated labeler makes them inside the job
source_problem = ""
if cfg.source == "simulated":
    a, b, c = st.columns(3)
    a.selectbox("Hidden taste", tuple(TASTES), key=f"{P}.taste", format_func=lambda t: f"{t}: {TASTES[t][0]}")
    b.slider("Noise (labels flipped)", 0.0, 0.5, key=f"{P}.noise", step=0.05, help=hlp("noise"))
    c.number_input("Comparisons to keep", 10, 5000, key=f"{P}.n_pairs", step=50, help=hlp("n_pairs"))
    st.caption(
        "The simulated labeler reads two answers the SFT model sampled (temperature 1) for the same question and "
        "prefers the one with the higher **gold reward**: its taste's score, minus 1 unless the answer is one "
        "plain, well-formed sentence in the world's words, minus 1 unless it is about the person asked (starts "
        "with their name). Equal scores are a tie and are not kept. The gold reward is computed exactly, so every run below can also say how good its "
        "answers truly are; the reward model only ever sees the labels.")
elif cfg.source == "human":
    @st.cache_resource(max_entries=2, show_spinner=False)
    def prompt_list() -> list[str]:
        return preferences.prompts()

    def new_pair() -> None:
        """Two different sampled answers to a question, from the SFT run the page starts from."""
        model, tok, _ = ui.load_run(parent_path)
        n = len(st.session_state[LABELS]) + st.session_state.get("rl_skips", 0)
        prompt = prompt_list()[(n * 7) % len(prompt_list())]
        answers = list(dict.fromkeys(preferences.sample_texts(model, tok, prompt, 8, seed=n)))
        st.session_state["rl_pending"] = {"prompt": prompt, "a": answers[0], "b": answers[-1]}

    def label(choice: str) -> None:
        st.session_state[LABELS].append({**st.session_state["rl_pending"], "choice": choice})
        new_pair()

    if "rl_pending" not in st.session_state:
        new_pair()
    pend = st.session_state["rl_pending"]
    st.markdown(f"**Question:** {html.escape(pend['prompt'])}")
    left, right = st.columns(2)
    for col, key in ((left, "a"), (right, "b")):
        with col.container(border=True):
            st.markdown(f"**Answer {key.upper()}**")
            st.text(pend[key] or "(nothing)")
    b = st.columns([2, 2, 2, 2, 4])
    b[0].button("A is better", key="rl_pick_a", on_click=label, args=("A",), width="stretch")
    b[1].button("B is better", key="rl_pick_b", on_click=label, args=("B",), width="stretch")
    b[2].button("Tie", key="rl_pick_tie", on_click=label, args=("tie",), width="stretch")
    b[3].button("Skip", key="rl_skip", width="stretch",
                on_click=lambda: (st.session_state.__setitem__("rl_skips", st.session_state.get("rl_skips", 0) + 1),
                                  new_pair()))
    labels = st.session_state[LABELS]
    pairs, ties = preferences.pairs_from_labels(labels)
    pairs, dropped = preferences.usable(pairs)
    st.caption(f"**{len(labels)} labels** so far: {len(pairs)} preferences, {ties} ties"
               + (f", {len(dropped)} pairs of identical answers" if dropped else "")
               + f". Training needs at least {config.MIN_PAIRS} preferences; a few dozen give a reward model something "
                 "to learn. Your labels stay while this tab is open, also on other pages; download them to keep them.")
    if labels:
        st.download_button("Download your labels (JSON Lines)", preferences.labels_to_jsonl(labels),
                           file_name="preferences.jsonl", mime="application/jsonl", key="rl_labels_dl",
                           on_click="ignore", icon=":material/download:")
    if labels and not pairs:
        source_problem = (f"All {len(labels)} of your labels are ties (or identical answers): a tie says neither "
                          "answer is better, so there is nothing to learn. Pick A or B for at least "
                          f"{config.MIN_PAIRS} pairs.")
    elif not labels:
        source_problem = f"You have not labelled any pairs yet: pick A or B for at least {config.MIN_PAIRS} of them."
else:
    up = st.file_uploader("Preference pairs in TRL's format: one JSON object per line with `prompt`, `chosen` and "
                          "`rejected` (strings or chat messages)", type=["jsonl", "json"], key="rl_upload")
    if up is None:
        source_problem = "Upload a JSON Lines file of preference pairs first."
    else:
        pairs, error = ui.jsonl_upload(up, preferences.parse_jsonl, "pairs")
        source_problem = f"Fix the file first: {error}" if error else ""
if source_problem:
    st.info(source_problem, icon=":material/info:")
cfg = ui.read_config(RLHFConfig, P)


def data_key() -> str:
    return "sim" if pairs is None else preferences.pairs_to_jsonl(pairs)


def check_source() -> None:
    if source_problem:
        raise UserError(source_problem)


# --- 2. the reward model ---------------------------------------------------------------------------
st.header("2 · The reward model")
st.markdown(
    "A copy of the SFT model with its next-token head replaced by **one output**, a score "
    "(`AutoModelForSequenceClassification`, `num_labels=1`). It reads question and answer and is trained so the "
    "preferred answer scores higher: the Bradley–Terry loss **−log σ(r(chosen) − r(rejected))** (Bradley & "
    "Terry 1952; InstructGPT's eq. 1). Held-out pair accuracy counts the comparisons it has never seen that it "
    "ranks the labeler's way. A fifth of the training questions is set aside for validation: the run keeps the "
    "weights of the evaluation with the best validation accuracy, since a reward model soon memorises noisy "
    "labels (InstructGPT trains one epoch for that reason). With a share of labels flipped by noise, even a "
    "perfect reward model agrees with only the rest of the held-out labels; the dotted line checks it against the "
    "gold reward.")
with st.container(border=True):
    a, b, c = st.columns(3)
    a.number_input("Steps", 1, 100_000, key=f"{P}.rm_steps", step=20)
    b.select_slider("Learning rate", sorted({1e-4, 3e-4, 1e-3, 3e-3, st.session_state[f"{P}.rm_lr"]}),
                    key=f"{P}.rm_lr", format_func=lambda v: f"{v:g}")
    c.number_input("Pairs per step", 1, 256, key=f"{P}.batch_size", help=hlp("batch_size"))
cfg = ui.read_config(RLHFConfig, P)


def rm_submissions() -> list[dict]:
    check_source()
    owner, given = ui.visitor_id(), pairs
    return [dict(key=cfg.key("reward", data_key()), label="reward model", total_steps=cfg.rm_steps,
                 max_seconds=cfg.max_seconds + 30, stage="reward",
                 task=Task(recipe.run_reward, cfg, {"pairs": given, "owner": owner}))]


rm_jobs = ui.controls(RM, rm_submissions, label="Train reward model")


TRAIN, HELD, VAL, GOLD = "#83c9ff", "#0068c9", "#ff8700", "#29b09d"   # the same line for the same split


def draw_rm(snaps: list[dict]) -> None:
    s = snaps[0]
    ui.status_line(s)
    if lab := s["info"].get("labels"):
        st.caption(f"Simulated labeler ({lab['taste']}): {lab['compared']} comparisons, {lab['ties']} ties not kept, "
                   f"{lab['flipped']} flipped by noise, {lab['kept']} kept.")
    tr = [r for r in s["records"] if "loss" in r]
    ev = [r for r in s["records"] if "eval_accuracy" in r]
    kept = s["info"].get("kept")
    if not tr:
        return
    left, right = st.columns(2)
    with left:
        ui.curve_chart([dict(name="train", x=[r["step"] for r in tr], y=ui.smooth([r["loss"] for r in tr]),
                             color=TRAIN),
                        dict(name="held out", x=[r["step"] for r in ev], y=[r["eval_loss"] for r in ev], markers=True,
                             color=HELD),
                        dict(name="validation", x=[r["step"] for r in ev], y=[r["val_loss"] for r in ev],
                             markers=True, dash="dash", color=VAL)], "Bradley–Terry loss", key="rl_rm_loss", height=300,
                       hlines=[(0.693, "chance: log 2")])
    with right:
        acc = [dict(name="held out: the labels (eval_accuracy)", x=[r["step"] for r in ev],
                    y=[r["eval_accuracy"] for r in ev], markers=True, color=HELD),
               dict(name="validation: the labels (chooses the kept step)", x=[r["step"] for r in ev],
                    y=[r["val_accuracy"] for r in ev], markers=True, dash="dash", color=VAL)]
        if ev and "eval_gold_accuracy" in ev[-1]:
            acc.append(dict(name="held out: the gold reward", x=[r["step"] for r in ev],
                            y=[r["eval_gold_accuracy"] for r in ev], markers=True, dash="dot", color=GOLD))
        ui.curve_chart(acc, "Held-out pair accuracy", ytitle="share ranked right", key="rl_rm_acc", height=300,
                       hlines=[(0.5, "chance")])
    m = st.columns(4)
    m[0].metric("loss", f"{tr[-1]['loss']:.3f}")
    shown = kept or (ev[-1] if ev else None)
    m[1].metric("eval_accuracy", f"{shown['eval_accuracy']:.0%}" if shown else "–",
                help="held-out pairs the kept reward model ranks as the labels do (noisy labels cap it)")
    if shown and "eval_gold_accuracy" in shown:
        m[2].metric("eval_gold_accuracy", f"{shown['eval_gold_accuracy']:.0%}",
                    help="held-out pairs it ranks as the gold reward does: what the labeler truly prefers")
    m[3].metric("pairs", " / ".join(str(s["info"].get(k, "–")) for k in ("train_pairs", "val_pairs", "test_pairs")),
                help="training / validation / held-out test pairs, split by question")
    if kept:
        st.caption(f"Kept the weights of step {kept['kept_step']} (best validation accuracy, "
                   f"{kept['val_accuracy']:.0%}); the accuracies above are that model's, on the held-out test pairs.")
    if rows := s["info"].get("examples"):
        st.markdown("**What it says about held-out answers** (higher is better; only differences matter):")
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="rl_rm_examples")


ui.live(RM, draw_rm)

# --- 3. the policy -----------------------------------------------------------------------------------
st.header("3 · Pull the policy toward the preferences")
st.radio("Method", config.METHODS, key=f"{P}.method", horizontal=True, help=hlp("method"),
         format_func={"ppo": "PPO against the reward model", "dpo": "DPO on the pairs"}.get)
with st.container(border=True):
    a, b, c, d = st.columns(4)
    if st.session_state[f"{P}.method"] == "ppo":
        a.slider("KL coefficient", 0.0, 1.0, key=f"{P}.kl_coef", step=0.01, help=hlp("kl_coef"))
        b.number_input("Updates per rollout", 1, 16, key=f"{P}.ppo_epochs", help=hlp("ppo_epochs"))
        c.number_input("Answers per prompt", 2, 64, key=f"{P}.samples_per_prompt", help=hlp("samples_per_prompt"))
    else:
        a.select_slider("β (beta)", sorted({0.01, 0.03, 0.1, 0.3, 1.0, st.session_state[f"{P}.beta"]}),
                        key=f"{P}.beta", help=hlp("beta"))
    d.number_input("Steps", 1, 100_000, key=f"{P}.steps", step=20)
    d.select_slider("Learning rate", sorted({1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 1e-2, 1.0, st.session_state[f"{P}.lr"]}),
                    key=f"{P}.lr", format_func=lambda v: f"{v:g}")
    c.number_input("Time limit (s)", 1, int(limits.MAX_JOB_SECONDS), key=f"{P}.max_seconds", step=10)
    b.number_input("Evaluate every", 1, 100_000, key=f"{P}.eval_every", step=5)
    a.number_input("Seed", 0, 2**31 - 1, key=f"{P}.seed")
cfg = ui.read_config(RLHFConfig, P)
if cfg.method == "ppo":
    st.caption(
        "Each rollout samples answers to a few questions, scores them with the reward model, and subtracts "
        f"{cfg.kl_coef:g} × log(π/π_SFT) per answer (InstructGPT's eq. 2). An answer's advantage is that penalised "
        "reward minus the mean over all the answers to the same question (itself included), divided by the standard "
        "deviation of these differences across the whole rollout: a group baseline instead of PPO's learned value "
        "network. GRPO subtracts the same group mean but divides by each group's own standard deviation (Shao et al. "
        "2024, arXiv:2402.03300, §4.1.2); RLOO subtracts the mean of the *other* answers, the same up to a factor "
        "k/(k−1) (Ahmadian et al. 2024, arXiv:2402.14740). So the method here is PPO's clipped objective with a "
        f"group baseline and no value network. Then {cfg.ppo_epochs} updates of PPO's clipped objective (Schulman et al. 2017, eq. 7, ε = "
        f"{cfg.clip:g}) on that rollout: the first has ratio 1, so clipping can bind only from the second on "
        "(policy/clipfrac_avg).")
else:
    st.caption(
        "DPO raises log π(chosen) − log π(rejected) relative to the frozen SFT model: loss −log σ(β·log π/π_SFT "
        "(chosen) − β·log π/π_SFT (rejected)) (Rafailov et al. 2023, eq. 7). β·log π/π_SFT is the *implicit reward* "
        "TRL reports as rewards/chosen and rewards/rejected.")


def policy_submissions() -> list[dict]:
    owner, given, one = ui.visitor_id(), pairs, cfg
    if cfg.method == "dpo":
        check_source()
    else:   # the reward model, named now (it may be one the cache gave this visitor); a clear error if none
        found = models.find_reward(cfg.reward, runs.read_info(parent_path).path.name, owner, also=ui.my_results())
        one = cfg.replace(reward=found.name)
    return [dict(key=one.key("policy", data_key(), owner), label=one.method.upper(), total_steps=one.steps,
                 max_seconds=one.max_seconds + 30, stage="rlhf",
                 task=Task(recipe.run_policy, one, {"pairs": given, "owner": owner, "also": tuple(ui.my_results())}))]


jobs = ui.controls(P, policy_submissions)


def series(rows: list[dict], key: str, name: str, **kw) -> dict:
    pts = [r for r in rows if key in r]
    return dict(name=name, x=[r["step"] for r in pts], y=ui.smooth([r[key] for r in pts]) if kw.pop("smooth", True)
                else [r[key] for r in pts], **kw)


def draw_policy(snaps: list[dict]) -> None:
    s = snaps[0]
    ui.status_line(s)
    recs = s["records"]
    tr = [r for r in recs if "loss" in r]
    ev = [r for r in recs if "eval_gold_reward" in r]
    if not tr:
        return
    left, right = st.columns(2)
    if "objective/scores" in tr[-1]:
        with left:
            ui.curve_chart([series(tr, "objective/scores", "proxy: reward model's score (objective/scores)"),
                            series(tr, "objective/rlhf_reward", "objective/rlhf_reward (score − KL penalty)",
                                   dash="dot")], "What the reward model says", ytitle="reward", key="rl_proxy",
                           height=300)
        with right:
            ui.curve_chart([series(tr, "gold_reward", "gold reward of the same answers"),
                            series(ev, "eval_gold_reward", "gold, held-out questions", smooth=False, markers=True,
                                   dash="dash")],
                           "What the labeler truly prefers (gold)", ytitle="gold reward", key="rl_gold", height=300)
        ui.curve_chart([series(tr, "objective/kl", "objective/kl (nats per answer)"),
                        series(tr, "objective/entropy", "objective/entropy (nats per answer)")],
                       "Distance from the SFT model, and how varied the answers are", ytitle="nats", key="rl_kl",
                       height=260)
        st.caption(
            "Proxy against gold, as in Gao, Schulman & Hilton (2022), *Scaling Laws for Reward Model "
            "Overoptimization*: the reward model is only an estimate of the labeler. Optimised hard enough, the "
            "policy finds answers the reward model overrates, so the proxy keeps rising while the gold stalls or "
            "falls. Set the KL coefficient to 0, the learning rate to 3e-4 and train 300 steps to see it: entropy "
            "falls toward 0, the answers collapse toward one high-scoring phrase whether or not it fits the question "
            "(a sentence about someone else, or a fragment), and the gold reward, which checks that an answer is a "
            "well-formed sentence about the person asked, falls below the SFT model's while the proxy still "
            "climbs.")
    else:
        with left:
            ui.curve_chart([series(tr, "rewards/chosen", "rewards/chosen"),
                            series(tr, "rewards/rejected", "rewards/rejected"),
                            series(tr, "rewards/margins", "rewards/margins", dash="dot")],
                           "Implicit rewards β·log π/π_SFT (training pairs)", ytitle="reward", key="rl_dpo_rewards",
                           height=300)
        with right:
            ui.curve_chart([series(ev, "eval_gold_reward", "gold reward, held-out questions", smooth=False,
                                   markers=True),
                            series(ev, "eval_rewards/accuracies", "eval_rewards/accuracies", smooth=False,
                                   markers=True, dash="dot")],
                           "Held out: true quality and pair accuracy", ytitle="", key="rl_dpo_gold", height=300)
        st.caption(
            "Why can rewards/chosen fall while the margin grows? DPO's loss only asks that chosen answers gain on "
            "rejected ones *relative to the SFT model*. Both answers of a pair are usually likely, similar sentences, "
            "and pushing the rejected one down also pulls probability from the chosen one; the probability goes to "
            "answers in neither pair. So both log-ratios can fall, the rejected faster. Pal et al. (2024, "
            "*Smaug*) show this happens most when chosen and rejected differ in few tokens, as they do here.")
    last = tr[-1]
    m = st.columns(4)
    if "objective/scores" in last:
        m[0].metric("objective/rlhf_reward", f"{last['objective/rlhf_reward']:.2f}")
        m[1].metric("objective/kl", f"{last['objective/kl']:.2f}")
        m[2].metric("objective/entropy", f"{last['objective/entropy']:.2f}")
    else:
        m[0].metric("rewards/margins", f"{last['rewards/margins']:.3f}")
        m[1].metric("rewards/chosen", f"{last['rewards/chosen']:.3f}")
        m[2].metric("rewards/accuracies", f"{last['rewards/accuracies']:.0%}")
    m[3].metric("gold reward (held out)", f"{ev[-1]['eval_gold_reward']:.2f}" if ev else "–",
                delta=f"{ev[-1]['eval_gold_reward'] - ev[0]['eval_gold_reward']:+.2f} since SFT" if len(ev) > 1 else None)


ui.live(P, draw_policy)

# --- 4. before and after -----------------------------------------------------------------------------
finished = [j for j in jobs if not j.active and j.result]
if finished:
    job = finished[0]
    st.header("4 · Before and after")
    rows = job.snapshot()["info"].get("before_after", [])
    if rows:
        table = pd.DataFrame(rows)
        st.dataframe(table, hide_index=True, width="stretch", key="rl_before_after", column_config={
            c: st.column_config.NumberColumn(c, format="%.2f") for c in table.columns if "reward" in c or "gold" in c})
        st.caption("The same held-out questions answered greedily by the SFT model and by the tuned policy, with "
                   "the reward model's score (when one was trained) and the gold reward of each answer.")
    info = runs.read_info(job.result)
    st.markdown(f"Saved as run `{html.escape(info.path.name)}` (stage **rlhf**, parent `{html.escape(info.parent)}`)."
                " Reward models are saved as their own runs (stage **reward**, same parent), with the pairs they "
                "learned from in `preferences.jsonl`. The zip is a transformers folder: "
                "`AutoModelForCausalLM.from_pretrained(folder)`.")
    ui.download_run(job.result, key="rl_dl")
