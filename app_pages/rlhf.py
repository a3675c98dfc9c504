"""RLHF: preferences, a reward model, and a policy pulled toward them (PPO, or DPO beside it). The first
screen is two recorded PPO runs, with and without the KL leash: the reward model's score against the
true (gold) reward, reward hacking included; then a run of your own."""
import html

import pandas as pd
import streamlit as st

from app_pages import ui
from engine import demos
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
PROXY, GOLD = "#1f77b4", "#2ca02c"   # the reward model's score and the true reward: the same colours everywhere

st.title("RLHF: learning from preferences")
st.markdown(
    "People find it easier to say which of two answers is better than to write the best one. InstructGPT (Ouyang "
    "et al. 2022) turns such comparisons into a **reward model**, then trains the SFT model against it by "
    "reinforcement learning (**PPO**), held near the SFT model by a **KL penalty**: the leash. Here a simulated "
    "labeler with a hidden taste compares, so every answer also has a true (**gold**) reward.")


def rolled(rows: list[dict], key: str) -> list[dict]:
    return [r for r in rows if r.get("part", "policy") == "policy" and key in r]


# --- the payoff: PPO with and without the leash, recorded ----------------------------------------------
leash, hacked = demos.load("rlhf-ppo"), demos.load("rlhf-reward-hacking")
pay, invite = st.columns([7, 5])
with pay:
    if leash and hacked:
        ev_l, ev_h = rolled(leash["records"], "eval_gold_reward"), rolled(hacked["records"], "eval_gold_reward")
        x = lambda ev: [r.get("part_step", r["step"]) for r in ev]  # noqa: E731
        g0, gl, gh = ev_l[0]["eval_gold_reward"], ev_l[-1]["eval_gold_reward"], ev_h[-1]["eval_gold_reward"]
        p0, pl, ph = ev_l[0]["eval_scores"], ev_l[-1]["eval_scores"], ev_h[-1]["eval_scores"]
        lc, hc = leash["stage_config"], hacked["stage_config"]
        ui.curve_chart(
            [dict(name="reward model's score, leashed", x=x(ev_l), y=[r["eval_scores"] for r in ev_l],
                  color=PROXY, markers=True),
             dict(name="gold reward, leashed", x=x(ev_l), y=[r["eval_gold_reward"] for r in ev_l],
                  color=GOLD, markers=True),
             dict(name="reward model's score, no leash", x=x(ev_h), y=[r["eval_scores"] for r in ev_h],
                  color=PROXY, dash="dash", markers=True, symbol="x"),
             dict(name="gold reward, no leash", x=x(ev_h), y=[r["eval_gold_reward"] for r in ev_h],
                  color="#d62728", dash="dash", markers=True, symbol="x")],
            "PPO, recorded: reward model vs truth", ytitle="reward (each its own scale)",
            xtitle="PPO step", key="rl_payoff", height=330, hlines=[(g0, "the SFT model's gold reward")],
            notice=f"With the leash (KL coefficient {lc['kl_coef']:g}, the quick demo) both rise: the score "
                   f"{p0:.1f} → {pl:.1f}, the gold {g0:.1f} → {gl:.1f}. With no leash and a "
                   f"{hc['lr'] / lc['lr']:.0f}× higher learning rate the score climbs further ({ph:.1f}) while the "
                   f"gold falls to {gh:.1f}, below the SFT model: **reward hacking** (Gao, Schulman & Hilton 2022, "
                   "*Scaling Laws for Reward Model Overoptimization*, measured the same shape at real scale). "
                   "The numbers are this toy's: recorded with the quick-demo settings, seed 0, on validation "
                   "questions never trained on.")
    else:
        st.info("The recorded runs are missing (`python -m engine demo rlhf-ppo rlhf-reward-hacking` records them). "
                "Train one yourself: the first click runs the labeler, the reward model and PPO.",
                icon=":material/info:")

# Train at full width (its four buttons need it), then the settings: on a phone, Train comes before them.
with st.container(border=True):
    train_box = st.container()
    settings_box = st.container()
live_box = st.container()
after_box = st.container()
if leash and hacked:
    ba_l = {r["prompt"]: r for r in leash["info"].get("before_after", [])}
    rows = [{"question": r["prompt"], "SFT model": r["SFT"],
             "after PPO, leashed": ba_l.get(r["prompt"], {}).get("tuned", ""), "after PPO, no leash": r["tuned"]}
            for r in hacked["info"].get("before_after", [])[:6]]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="rl_payoff_answers")
    ui.takeaway("The hidden taste is animals, in one plain sentence about the person asked. Leashed, the answers stay "
                "such sentences; unleashed, they collapse toward a few strings the reward model pays for (an animal "
                "word after \"has a\"), about no one or about the wrong person, misspelt or stuttering, which the "
                "gold reward marks down. Greedy answers of the two recorded runs.")

st.info(
    "**Common claim, checked: “LLaMA was trained with RLHF.”** Not the first LLaMA. LLaMA (Touvron et al., Feb "
    "2023, arXiv:2302.13971) was released as base models trained only to predict the next token; its paper adds "
    "one brief instruction-tuning experiment (§4) and no RLHF. **Llama 2-Chat** was SFT, then RLHF: "
    "rejection-sampling fine-tuning and PPO against reward models trained on human comparisons (Touvron et al., "
    "Jul 2023, arXiv:2307.09288, §3). **Llama 3**'s post-training was rounds of SFT, rejection sampling and DPO; "
    "its authors tried PPO but found DPO needed less compute at scale and performed better (Llama Team, 'The "
    "Llama 3 Herd of Models', 2024, arXiv:2407.21783, §4).", icon=":material/fact_check:")


# --- 1. preferences (read first: the run above uses them) --------------------------------------------
st.header("1 · Preferences")
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
        "The simulated labeler reads up to four different answers the SFT model sampled (temperature 1) for the same "
        "question and compares every two of them, as InstructGPT's labelers ranked 4 to 9 answers and each ranking "
        "gave all its pairs (Ouyang et al. 2022, §3.5). It prefers the answer with the higher **gold reward**: its "
        "taste's score, minus 1 unless the answer is one plain, well-formed sentence in the world's words, minus 1 "
        "unless it is about the person asked (starts with their name). Equal scores are a tie and are not kept. "
        "The gold reward is computed exactly, so every run can also say how good its answers truly are; the reward "
        "model only ever sees the labels.")
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
    "Terry 1952; InstructGPT's eq. 1). The pairs are split by question into **training**, **validation** and "
    "**test**: the run keeps the weights of the evaluation with the best validation accuracy, since a reward model "
    "soon memorises noisy labels (InstructGPT trains one epoch for that reason), and the test pairs, never used to "
    "choose, say how well it ranks. PPO trains one by itself when you have none; train one here to look closer.")
with st.container(border=True):
    a, b, c = st.columns(3)
    a.number_input("Steps", 1, 100_000, key=f"{P}.rm_steps", step=20, help=hlp("rm_steps"))
    b.select_slider("Learning rate", sorted({1e-4, 3e-4, 1e-3, 3e-3, st.session_state[f"{P}.rm_lr"]}),
                    key=f"{P}.rm_lr", format_func=lambda v: f"{v:g}", help=hlp("rm_lr"))
    c.number_input("Pairs per step", 1, 256, key=f"{P}.batch_size", help=hlp("batch_size"))
cfg = ui.read_config(RLHFConfig, P)


def rm_submissions() -> list[dict]:
    check_source()
    owner, given = ui.visitor_id(), pairs
    return [dict(key=cfg.key("reward", data_key()), label="reward model", total_steps=cfg.rm_steps,
                 max_seconds=cfg.max_seconds + 30, stage="reward",
                 task=Task(recipe.run_reward, cfg, {"pairs": given, "owner": owner}))]


rm_jobs = ui.controls(RM, rm_submissions, label="Train reward model")
TRAIN, TEST, VAL = "#83c9ff", "#0068c9", "#ff8700"   # the same line for the same split


def rm_charts(records: list[dict], info: dict, noise: float | None, key: str) -> None:
    """The reward model's curves, its accuracies against their anchors, and what it says of test answers."""
    if lab := info.get("labels"):
        st.caption(f"Simulated labeler ({lab['taste']}): {lab['compared']} comparisons, {lab['ties']} ties not kept, "
                   f"{lab['flipped']} flipped by noise, {lab['kept']} kept.")
    tr = [r for r in records if "loss" in r]
    ev = [r for r in records if "eval_accuracy" in r]
    kept = info.get("kept")
    if not tr:
        return
    left, right = st.columns(2)
    with left:
        ui.curve_chart([dict(name="training", x=[r["step"] for r in tr], y=ui.smooth([r["loss"] for r in tr]),
                             color=TRAIN),
                        dict(name="validation", x=[r["step"] for r in ev], y=[r["val_loss"] for r in ev],
                             markers=True, dash="dash", color=VAL),
                        dict(name="test", x=[r["step"] for r in ev], y=[r["eval_loss"] for r in ev], markers=True,
                             color=TEST)], "Bradley–Terry loss", ytitle="nats per pair", key=f"{key}_loss",
                       height=300, hlines=[(0.693, "chance: ln 2")],
                       notice="A reward model that cannot tell the answers apart scores ln 2 = 0.69 per pair. The "
                              "training loss keeps falling as it memorises its pairs; validation and test turn "
                              "up when it starts to overfit the noisy labels.")
    with right:
        acc = [dict(name="test: the labels", x=[r["step"] for r in ev], y=[r["eval_accuracy"] for r in ev],
                    markers=True, color=TEST),
               dict(name="validation: the labels (chooses the kept step)", x=[r["step"] for r in ev],
                    y=[r["val_accuracy"] for r in ev], markers=True, dash="dash", color=VAL)]
        if ev and "eval_gold_accuracy" in ev[-1]:
            acc.append(dict(name="test: the gold reward", x=[r["step"] for r in ev],
                            y=[r["eval_gold_accuracy"] for r in ev], markers=True, dash="dot", color=GOLD))
        anchors = [(0.5, "chance: 50%")] + ([(1 - noise, f"a perfect model on noisy labels: {1 - noise:.0%}")]
                                            if noise else [])
        ui.curve_chart(acc, "Pairs ranked as the labeler ranked them", ytitle="share ranked right", key=f"{key}_acc",
                       height=300, hlines=anchors,
                       notice="Chance is 50%." + (f" With {noise:.0%} of the labels flipped, even a perfect reward "
                                                  f"model agrees with only about {1 - noise:.0%} of the test labels; "
                                                  "the dotted line scores it against the gold reward instead."
                                                  if noise else "")
                              + " Real labels are far noisier than these toy ones: InstructGPT's labelers agreed "
                                "with each other 72.6% of the time (Ouyang et al. 2022, §3.4).")
    m = st.columns(4)
    m[0].metric(ui.label("loss"), f"{tr[-1]['loss']:.3f}", help=ui.metric_help("loss", "Bradley–Terry loss, this "
                                                                                     "batch of training pairs."))
    shown = kept or (ev[-1] if ev else None)
    m[1].metric("test accuracy", f"{shown['eval_accuracy']:.0%}" if shown else "–",
                help=ui.metric_help("eval_accuracy", "Test pairs the kept reward model ranks as the labels do "
                                                     "(noisy labels cap it)."))
    if shown and "eval_gold_accuracy" in shown:
        m[2].metric("test accuracy against gold", f"{shown['eval_gold_accuracy']:.0%}",
                    help=ui.metric_help("eval_gold_accuracy", "Test pairs it ranks as the gold reward does: what the "
                                                              "labeler truly prefers."))
    m[3].metric("training / validation / test pairs",
                " / ".join(str(info.get(k, "–")) for k in ("train_pairs", "val_pairs", "test_pairs")),
                help="split by question: a validation or test question is never trained on")
    if kept:
        st.caption(f"Kept the weights of step {kept['kept_step']} (best validation accuracy, "
                   f"{kept['val_accuracy']:.0%}); the accuracies above are that model's, on the test pairs.")
    if rows := info.get("examples"):
        st.markdown("**What it says about test answers** (one pair per question; higher is better, only differences "
                    "matter):")
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key=f"{key}_examples")


def draw_rm(snaps: list[dict]) -> None:
    s = snaps[0]
    ui.status_line(s)
    rm_charts(s["records"], s["info"], cfg.noise if cfg.source == "simulated" else None, "rl_rm")


ui.live(RM, draw_rm)

# --- 3. the policy: what PPO and DPO do ------------------------------------------------------------------
st.header("3 · Pull the policy toward the preferences")
st.markdown("**PPO** (the default above) is InstructGPT's step 3, reinforcement learning: sample answers, score them "
            "with the reward model, make the better-scored ones likelier. **DPO** skips the reward model and the "
            "sampling: it learns from the pairs themselves.")
st.caption(
    "PPO here: each rollout samples answers to a few questions, scores them with the reward model, and subtracts "
    f"{cfg.kl_coef:g} × log(π/π_SFT) per answer (InstructGPT's eq. 2). An answer's advantage is that penalised "
    "reward minus the mean over all the answers to the same question (itself included), divided by the standard "
    "deviation of these differences across the whole rollout: a group baseline instead of PPO's learned value "
    "network. GRPO subtracts the same group mean but divides by each group's own standard deviation (Shao et al. "
    "2024, arXiv:2402.03300, §4.1.2); RLOO subtracts the mean of the *other* answers, the same up to a factor "
    "k/(k−1) (Ahmadian et al. 2024, arXiv:2402.14740). So the method here is PPO's clipped objective with a "
    f"group baseline and no value network. Then {cfg.ppo_epochs} updates of PPO's clipped objective (Schulman et al. "
    f"2017, eq. 7, ε = {cfg.clip:g}) on that rollout: the first has ratio 1, so clipping can bind only from the "
    "second on.")
st.caption(
    "DPO raises log π(chosen) − log π(rejected) relative to the frozen SFT model: loss −log σ(β·log π/π_SFT "
    "(chosen) − β·log π/π_SFT (rejected)) (Rafailov et al. 2023, eq. 7). β·log π/π_SFT is the *implicit reward* "
    "of an answer, which DPO's charts show for the chosen and the rejected answers (the ? beside each number names "
    "it as TRL logs it).")

# --- your own run (drawn at the top, beside the recorded one) -----------------------------------------------


def pick_lr() -> None:
    st.session_state[f"{P}.lr"] = config.METHOD_LR[st.session_state[f"{P}.method"]]


with invite:
    st.subheader("Train it yourself")
    st.markdown("**Train** runs the quick demo, the leashed run of the chart: the simulated labeler's comparisons, "
                "a reward model, then PPO, in about 20-30 s on a quiet machine. **Watch reward hacking** runs the "
                "unleashed one.")
    ui.preset_picker(RLHFConfig, P)
with settings_box:
    left_set, right_set = st.columns(2)
    left_set.radio("Method", config.METHODS, key=f"{P}.method", horizontal=True, on_change=pick_lr,
                   help=hlp("method") + ". Changing it sets the learning rate to the method's (PPO 3e-4, DPO 1e-4).",
                   format_func={"ppo": "PPO (RL, against the reward model)", "dpo": "DPO (from the pairs)"}.get)
    if st.session_state[f"{P}.method"] == "ppo":
        right_set.slider("KL coefficient (the leash)", 0.0, 1.0, key=f"{P}.kl_coef", step=0.01, help=hlp("kl_coef"))
    else:
        right_set.select_slider("β (beta)", sorted({0.01, 0.03, 0.1, 0.3, 1.0, st.session_state[f"{P}.beta"]}),
                                key=f"{P}.beta", help=hlp("beta"))
cfg = ui.read_config(RLHFConfig, P)


def policy_submissions() -> list[dict]:
    owner, given, one = ui.visitor_id(), pairs, cfg
    total = one.steps
    if cfg.method == "dpo":
        check_source()
    else:   # the reward model, named now (it may be one the cache gave this visitor); none yet: the job trains one
        try:
            found = models.find_reward(cfg.reward, runs.read_info(parent_path).path.name, owner,
                                       also=ui.my_results())
            one = cfg.replace(reward=found.name)
        except UserError:
            if cfg.reward:
                raise
            check_source()
            total = one.rm_steps + one.steps
    return [dict(key=one.key("policy", data_key(), owner), label=one.method.upper(), total_steps=total,
                 max_seconds=2 * one.max_seconds + 30, stage="rlhf",
                 task=Task(recipe.run_policy, one, {"pairs": given, "owner": owner, "also": tuple(ui.my_results())}))]


HACK = {k: v for k, v in recipe.HACKING.to_dict().items() if k not in ("parent", "reward", "max_seconds")}
with train_box:
    jobs = ui.controls(P, policy_submissions)
with invite:
    ui.one_click("Watch reward hacking", P, P, HACK,
                 help=f"PPO with no KL leash (coefficient 0) and a learning rate of {recipe.HACKING.lr:g}, "
                      f"{recipe.HACKING.steps} steps, seed 0: the unleashed run of the chart. It uses your newest "
                      "reward model for this SFT run, or trains one first (the labeler's comparisons, then the "
                      "reward model), as the recording did.")
with settings_box, ui.advanced():
    a, b, c = st.columns(3)
    a.number_input("Steps", 1, 100_000, key=f"{P}.steps", step=20, help=hlp("steps"))
    a.select_slider("Learning rate", sorted({1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 1e-2, 1.0, st.session_state[f"{P}.lr"]}),
                    key=f"{P}.lr", format_func=lambda v: f"{v:g}", help=hlp("lr"))
    if st.session_state[f"{P}.method"] == "ppo":
        b.number_input("Updates per rollout", 1, 16, key=f"{P}.ppo_epochs", help=hlp("ppo_epochs"))
        b.number_input("Answers per prompt", 2, 64, key=f"{P}.samples_per_prompt", help=hlp("samples_per_prompt"))
    c.number_input("Evaluate every", 1, 100_000, key=f"{P}.eval_every", step=5, help=hlp("eval_every"))
    c.number_input("Time limit (s)", 1, int(limits.MAX_JOB_SECONDS), key=f"{P}.max_seconds", step=10,
                   help=hlp("max_seconds"))
    b.number_input("Seed", 0, 2**31 - 1, key=f"{P}.seed", help=hlp("seed"))
with settings_box:
    st.caption("A first PPO run trains its reward model first (the labels, then step 2 below), all in one job; "
               "later runs use the newest reward model you trained for this SFT run.")
cfg = ui.read_config(RLHFConfig, P)


def series(rows: list[dict], key: str, name: str, **kw) -> dict:
    pts = [r for r in rows if key in r]
    return dict(name=name, x=[r.get("part_step", r["step"]) for r in pts],
                y=ui.smooth([r[key] for r in pts], 0.7) if kw.pop("smooth", True) else [r[key] for r in pts], **kw)


def draw_policy(snaps: list[dict]) -> None:
    s = snaps[0]
    ui.status_line(s)
    recs = s["records"]
    rm_recs = [r for r in recs if r.get("part") == "reward model"]
    if rm_recs or s["info"].get("reward_training"):
        rm_info = s["info"].get("reward_training", {})
        policy_started = any(r.get("part") == "policy" for r in recs)
        with st.expander("Part 1 of 2: the reward model this run trained first (you had none for this SFT run)",
                         expanded=not policy_started, icon=":material/scoreboard:"):
            rm_charts(rm_recs, rm_info, cfg.noise if cfg.source == "simulated" else None, "rl_part_rm")
    recs = rolled(recs, "step")
    tr = [r for r in recs if "loss" in r]
    ev = [r for r in recs if "eval_gold_reward" in r]
    if not tr:
        return
    left, right = st.columns(2)
    if "objective/scores" in tr[-1]:
        with left:
            ui.curve_chart([series(tr, "objective/scores", ui.label("objective/scores") + " (proxy)", color=PROXY),
                            series(tr, "objective/rlhf_reward", ui.label("objective/rlhf_reward"), dash="dot",
                                   color="#9467bd"),
                            series(tr, "gold_reward", ui.label("gold_reward"), color=GOLD)],
                           "The answers PPO trains on: proxy against gold", ytitle="reward", key="rl_proxy",
                           xtitle="PPO step", height=300,
                           notice="Each rollout's answers scored twice: by the reward model (what PPO maximises) and "
                                  "by the gold reward (what the labeler truly wants). Together they rise; when the "
                                  "score keeps rising while the gold falls, the policy is hacking the reward model "
                                  "(Gao, Schulman & Hilton 2022).")
        with right:
            ui.curve_chart([series(ev, "eval_scores", ui.label("eval_scores"), smooth=False, markers=True,
                                   color=PROXY),
                            series(ev, "eval_gold_reward", ui.label("eval_gold_reward"), smooth=False,
                                   markers=True, color=GOLD)],
                           "Validation questions", ytitle="reward", key="rl_gold", xtitle="PPO step", height=300,
                           hlines=[(ev[0]["eval_gold_reward"], "the SFT model's gold")] if ev else (),
                           notice="Questions PPO never samples, 8 answers each, at every evaluation: step 0 is the "
                                  "SFT model. Above the grey line the policy's answers are truly better than SFT's.")
        ui.curve_chart([series(tr, "objective/kl", ui.label("objective/kl")),
                        series(tr, "objective/entropy", ui.label("objective/entropy"))],
                       "Distance from the SFT model, and how varied the answers are", ytitle="nats per answer",
                       key="rl_kl", xtitle="PPO step", height=260,
                       notice="The KL penalty charges for every nat the answers drift from the SFT model's. With the "
                              "quick demo's leash it stays within a few nats (6 at most in the recorded run); with no "
                              "leash it grows to tens: the answers have left anything the SFT model would say, the "
                              "signature of reward hacking. Entropy is summed over an answer's tokens: it falls as a "
                              "leashed policy settles on its answers, and long, garbled answers raise it.")
    else:
        with left:
            ui.curve_chart([series(tr, "rewards/chosen", ui.label("rewards/chosen")),
                            series(tr, "rewards/rejected", ui.label("rewards/rejected")),
                            series(tr, "rewards/margins", ui.label("rewards/margins"), dash="dot")],
                           "Implicit rewards β·log π/π_SFT (training pairs)", ytitle="reward", key="rl_dpo_rewards",
                           height=300,
                           notice="0 is the SFT model. The margin (chosen minus rejected) grows as DPO learns the "
                                  "labels; the chosen reward itself can fall (see below).")
        with right:
            ui.curve_chart([series(ev, "eval_gold_reward", ui.label("eval_gold_reward"), smooth=False, markers=True,
                                   color=GOLD),
                            series(ev, "eval_rewards/accuracies", ui.label("eval_rewards/accuracies"), smooth=False,
                                   markers=True, dash="dot")],
                           "Validation pairs: true quality and pair accuracy", ytitle="", key="rl_dpo_gold", height=300,
                           hlines=[(ev[0]["eval_gold_reward"], "the SFT model's gold")] if ev else (),
                           notice="Step 0 is the SFT model. Pair accuracy: validation pairs whose chosen answer the "
                                  "policy now favours more than the SFT model did (chance 50%).")
        st.caption(
            "Why can the chosen reward fall while the margin grows? DPO's loss only asks that chosen answers gain on "
            "rejected ones *relative to the SFT model*. Both answers of a pair are usually likely, similar sentences, "
            "and pushing the rejected one down also pulls probability from the chosen one; the probability goes to "
            "answers in neither pair. So both log-ratios can fall, the rejected faster. Pal et al. (2024, "
            "*Smaug*) show this happens most when chosen and rejected differ in few tokens, as they do here.")
    last = tr[-1]
    m = st.columns(4)
    keys = ("objective/rlhf_reward", "objective/kl", "objective/entropy") if "objective/scores" in last else \
        ("rewards/margins", "rewards/chosen", "rewards/accuracies")
    for col, k in zip(m, keys):
        col.metric(ui.label(k), f"{last[k]:.0%}" if k.endswith("accuracies") else f"{last[k]:.2f}",
                   help=ui.metric_help(k))
    m[3].metric(ui.label("eval_gold_reward"), f"{ev[-1]['eval_gold_reward']:.2f}" if ev else "–",
                delta=f"{ev[-1]['eval_gold_reward'] - ev[0]['eval_gold_reward']:+.2f} since SFT" if len(ev) > 1 else None,
                help=ui.metric_help("eval_gold_reward", "Held-out questions, 8 sampled answers each."))


with live_box:
    ui.live(P, draw_policy)

# --- before and after --------------------------------------------------------------------------------
finished = [j for j in jobs if not j.active and j.result]
if finished:
    with after_box:
        job = finished[0]
        st.subheader("Before and after, your run")
        rows = job.snapshot()["info"].get("before_after", [])
        if rows:
            table = pd.DataFrame(rows)
            st.dataframe(table, hide_index=True, width="stretch", key="rl_before_after", column_config={
                c: st.column_config.NumberColumn(c, format="%.2f") for c in table.columns if "reward" in c or "gold" in c})
            ui.takeaway("The same validation questions answered greedily by the SFT model and by your policy, with the "
                        "reward model's score (when there is one) and the gold reward of each answer: where they "
                        "disagree, the reward model was fooled.")
        info = runs.read_info(job.result)
        st.markdown(f"Saved as run `{html.escape(info.path.name)}` (stage **rlhf**, parent "
                    f"`{html.escape(info.parent)}`). Reward models are saved as their own runs (stage **reward**, same "
                    "parent), with the pairs they learned from in `preferences.jsonl`. The zip is a transformers "
                    "folder: `AutoModelForCausalLM.from_pretrained(folder)`.")
        ui.download_run(job.result, key="rl_dl")

ui.real_scale(cfg)   # these settings as a command here, and as TRL's reward model and RLOO (or DPO) script
