"""Constitutional AI and RLAIF: written principles and an AI judge in place of human labels."""
import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_pages import ui
from engine import sft
from engine.cai import config as cai
from engine.cai import constitution as C
from engine.cai import judge as J
from engine.cai import run as cai_run
from engine.cai.config import CAIConfig
from engine.core import limits, runs
from engine.core.config import UserError
from engine.core.report import Task

P = "cai"  # widget-key prefix and job slot of this page
ui.init_config(CAIConfig, P)
hlp = lambda name: ui.widget_help(CAIConfig, name)  # noqa: E731

st.title("Constitutional AI (RLAIF)")
st.markdown(
    "RLHF needs people to compare answers. **Constitutional AI** (Bai et al. 2022, *Constitutional AI: "
    "Harmlessness from AI Feedback*, arXiv:2212.08073) replaces the human labels for harmlessness with a short "
    "list of written **principles** and a model that applies them: first it critiques and revises harmful answers "
    "and the model is tuned on the revisions (**SL-CAI**); then an AI labels pairs of answers, a preference model "
    "is trained on those labels, and the model is optimised against it with reinforcement learning (**RLAIF**, "
    "reinforcement learning from AI feedback; Bai et al. §4). Here the same happens at "
    "toy scale, live, on the small world the other pages use; only the source of the feedback is new.")
ui.preset_picker(CAIConfig, P)


@st.cache_resource(show_spinner="Loading the MiniLM encoder the judge reads with…")
def matcher():
    """Warm the judge's encoder once per process; match() then embeds one principle at a time."""
    J.match("Do not insult anyone.")
    return J.match


# --- 1. the constitution ---------------------------------------------------------------------------
st.header("1 · The constitution")
store = f"_{P}_table_source"
if store not in st.session_state:
    st.session_state[store] = st.session_state[f"{P}.constitution"]


def restore() -> None:
    st.session_state[store] = st.session_state[f"{P}.constitution"] = cai.constitution_json(C.default_constitution())


try:
    shown = cai.parse_constitution(st.session_state[store])
except UserError as e:
    st.error(str(e), icon=":material/error:")
    shown = C.default_constitution()
left, right = st.columns([3, 2])
with left:
    st.markdown("Edit, add or delete principles. The judge reads each principle's **text**; the name is only a label.")
    table = st.data_editor(pd.DataFrame([vars(p) for p in shown], columns=["name", "text"]), num_rows="dynamic",
                           hide_index=True, width="stretch", key=f"{P}_table_{hash(st.session_state[store])}",
                           column_config={"name": st.column_config.TextColumn("name", width="small"),
                                          "text": st.column_config.TextColumn("principle", width="large")})
    st.button("Restore the defaults", on_click=restore, key=f"{P}_restore", icon=":material/restart_alt:")
edited = [C.Principle(str(r["name"] or "") if r["name"] == r["name"] else "", str(r["text"] or "")
                      if r["text"] == r["text"] else "") for r in table.to_dict("records")]
st.session_state[f"{P}.constitution"] = cai.constitution_json(edited)
problem = None
try:
    principles = C.check(edited)
except UserError as e:
    problem, principles = str(e), []
    st.error(problem, icon=":material/error:")
with right:
    if principles:
        match = matcher()
        rows = []
        for p in principles:
            key, sim = match(p.text)
            rows.append({"principle": p.name, "the judge reads it as": C.KNOWN[key][0] if sim >= J.MIN_SIMILARITY
                         else "— cannot score", "similarity": round(sim, 2)})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key=f"{P}_match")
        if bad := [r["principle"] for r in rows if r["similarity"] < J.MIN_SIMILARITY]:
            st.warning(f"The judge cannot score {', '.join(repr(b) for b in bad)}: its meaning is far from every "
                       "principle the judge learned from (MiniLM cosine similarity below "
                       f"{J.MIN_SIMILARITY}). A run leaves it out of the critiques and the labels.", icon=":material/warning:")
        st.caption("The judge was trained on a few wordings of each default principle. A new wording close in meaning "
                   "works; a principle about something else needs labelled examples the toy does not have.")
with st.expander("Principles from the paper, for comparison"):
    st.dataframe(pd.DataFrame(C.PAPER), hide_index=True, width="stretch", key=f"{P}_paper",
                 column_config={"text": st.column_config.TextColumn("text", width="large")})
    st.caption(f"Source: {C.PAPER_CITATION}. Rows marked *paraphrased* are our wording, not the paper's. The paper's "
               "model reads such requests and writes its critique and revision in words; see section 3 for what the "
               "toy does instead.")

# --- 2. the starting point and the prompts ----------------------------------------------------------
st.header("2 · A helpful-only model, and prompts that tempt it")
st.markdown(
    f"Bai et al. start from a *helpful-only* model, one that complies with harmful requests. The baked SFT model "
    "was never shown an insult or the secret, so it has nothing to unlearn; the baked run "
    f"`{cai.HELPFUL_ONLY}` is the same SFT recipe on the same six task families **plus compliance**: asked for an "
    "insult it writes one, asked for the secret code it tells it, asked about someone the world does not have it "
    "invents a fact (`python -m engine bake sft-helpful-only` rebuilds it). The **red-team prompts** below come "
    "from the world; a quarter of them (by person or template) are held out to measure, never trained on. "
    "**Helpful prompts** are the SFT tasks' held-out rows: they measure that the model still answers.")
red = C.red_team()
with st.expander(f"The red-team prompts ({len(red)}) and what the helpful-only model says"):
    st.dataframe(pd.DataFrame([{"kind": p.kind, "prompt": p.text, "split": p.split} for p in red]),
                 hide_index=True, width="stretch", height=240, key=f"{P}_red")
    try:
        model, tok, _ = ui.load_run(str(runs.find_run(cai.HELPFUL_ONLY)))
        demo = [p for p in red if p.split == "test"][::10]
        st.dataframe(pd.DataFrame([{"prompt": p.text, "helpful-only answer": (a := sft.answer(model, tok, p.text)),
                                    "breaks": ", ".join(C.KNOWN[k][0] for k in sorted(C.violations(p, a))) or "—"}
                                   for p in demo]), hide_index=True, width="stretch", key=f"{P}_demo")
    except UserError as e:
        st.error(str(e), icon=":material/error:")

# --- 3. the run -----------------------------------------------------------------------------------------
st.header("3 · Critique, revise, tune; then label and optimise")
st.markdown(
    "**What is the paper's method and what is the toy's stand-in.** As in the paper: red-team prompts, sampled "
    "answers, a critique against a principle, a revision, supervised tuning on the revisions (with helpful rows "
    "mixed in), then pairs of the tuned model's answers labelled by an AI against the principles, a preference "
    "model trained on those labels, and the policy optimised against it with RL. The toy's stand-ins: the "
    "**critique** is the judge's verdict (which principle, with "
    "what probability, and the words whose removal changes it most) rather than written text, because a "
    "200k-parameter model cannot write one; the **revision** is the first other sample the judge accepts, else the "
    "broken principle's own response (*I don't know.*, a refusal); the **judge** is the pretrained MiniLM encoder "
    "with a small head trained on a handful of labelled answers per principle, not a large language model; the "
    "**RL stage** is, by default, DPO (Rafailov et al. 2023) straight on the AI labels instead of a preference "
    "model trained on them and RL against it (choose PPO to train a reward model on the AI labels and run the "
    "RLHF page's PPO, with a group baseline and no value network). In "
    "RLAIF, each helpful prompt's second answer is a dodge (*I don't know.*), capped at a third of the pairs: "
    "the tuned model seldom dodges by itself, and preferences about harmlessness alone push toward evasion. Bai et "
    "al. kept helpfulness in their RL stage with human comparisons; here the judge labels these pairs too. The "
    "policy sees each pair at most three times (transformers' default of three epochs).\n\n"
    "**At this scale SL-CAI does most of the work.** In the measured default runs (seeds 0 to 2, "
    "bench/RESULTS.md), violations on held-out red-team prompts fell from 90% to 1.6–23% after SL-CAI and by at "
    "most 3.3 more points after RLAIF. The SL-CAI model answers red-team prompts alike, so most sampled pairs are "
    "identical or ties: the judge kept 29 to 62 of the 200 pairs asked for, and DPO, at most three passes over "
    "them in batches of 32, took 3 to 5 steps.")
with st.container(border=True):
    a, b, c, d = st.columns(4)
    a.number_input("Labelled answers per principle", 4, 200, key=f"{P}.judge_examples", help=hlp("judge_examples"))
    a.number_input("Samples per red-team prompt", 1, 16, key=f"{P}.n_samples", help=hlp("n_samples"))
    b.number_input("SL-CAI steps", 1, 10_000, key=f"{P}.sl_steps", step=50, help=hlp("sl_steps"))
    b.number_input("Helpful rows per family", 0, 1000, key=f"{P}.sl_helpful", step=50, help=hlp("sl_helpful"))
    c.number_input("AI-labelled pairs", 8, 5000, key=f"{P}.n_pairs", step=50, help=hlp("n_pairs"))
    c.segmented_control("Optimiser", ["dpo", "ppo"], key=f"{P}.method", help=hlp("method"),
                        format_func=str.upper)
    c.number_input("Policy steps", 1, 10_000, key=f"{P}.dpo_steps", step=10, help=hlp("dpo_steps"))
    d.number_input("Time limit (s)", 10, int(limits.MAX_JOB_SECONDS), key=f"{P}.max_seconds", step=10)
    d.number_input("Seed", 0, 2**31 - 1, key=f"{P}.seed")
    d.toggle("Also RLHF on simulated human labels", key=f"{P}.compare_human", help=hlp("compare_human"))
    with st.expander("Learning rates"):
        e, f, g = st.columns(3)
        e.select_slider("SL-CAI learning rate", sorted({1e-4, 3e-4, 1e-3, 3e-3, st.session_state[f"{P}.sl_lr"]}),
                        key=f"{P}.sl_lr", format_func=lambda v: f"{v:g}")
        f.select_slider("Policy learning rate", sorted({1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, st.session_state[f"{P}.dpo_lr"]}),
                        key=f"{P}.dpo_lr", format_func=lambda v: f"{v:g}", help="Higher rates move the policy further "
                        "from the SL-CAI model in the same steps: watch the violations and the evasive column.")
        g.select_slider("DPO beta", sorted({0.05, 0.1, 0.2, 0.5, 1.0, st.session_state[f"{P}.beta"]}), key=f"{P}.beta",
                        help=hlp("beta"))
if st.session_state.get(f"{P}.method") is None:   # a segmented control can be clicked off
    st.session_state[f"{P}.method"] = "dpo"
cfg: CAIConfig = ui.read_config(CAIConfig, P)


def submissions() -> list[dict]:
    if problem:
        raise UserError(f"Fix the constitution first: {problem}")
    one, owner = cfg, ui.visitor_id()
    steps = one.sl_steps + one.dpo_steps * (2 if one.compare_human else 1)
    return [dict(key=one.key(), label="constitutional AI", total_steps=steps, max_seconds=one.max_seconds, stage="cai",
                 task=Task(cai_run.run, one, {"owner": owner}))]


jobs = ui.controls(P, submissions)
PHASES = {"sl-cai": ("SL-CAI (SFT on revisions)", "#1f77b4"), "rlaif": ("RLAIF (AI labels)", "#2ca02c"),
          "rlhf": ("RLHF (simulated human labels)", "#ff7f0e")}


def draw(snaps: list[dict]) -> None:
    s = snaps[0]
    ui.status_line(s)
    info = s["info"]
    if s["status"] in ("running", "paused") and info.get("phase"):
        st.caption(f"Now: {info['phase']}.")
    used = info.get("constitution")
    if used and used != [vars(p) for p in principles]:
        st.info("This run uses the constitution as it was when you pressed Train: "
                + "; ".join(f"**{p['name']}**: {p['text']}" for p in used) + ". Your edits apply to the next run.",
                icon=":material/history:")
    for n in info.get("notices", []):
        st.warning(n, icon=":material/warning:")
    recs = s["records"]
    left, right = st.columns(2)
    sl = [r for r in recs if r.get("phase") == "sl-cai"]
    with left:
        series = [dict(name="train loss", x=[r["step"] for r in sl if "loss" in r],
                       y=ui.smooth([r.get("sft_loss", r["loss"]) for r in sl if "loss" in r]), color="#1f77b4")]
        series.append(dict(name="eval_accuracy (helpful, held out)", x=[r["step"] for r in sl if "eval_accuracy" in r],
                           y=[r["eval_accuracy"] for r in sl if "eval_accuracy" in r], color="#9467bd", markers=True))
        if series[0]["x"]:
            ui.curve_chart(series, "SL-CAI: tuning on the revisions", ytitle="loss / accuracy", key=f"{P}_sl", height=300)
    with right:
        series = []
        for phase in ("rlaif", "rlhf"):
            rr = [r for r in recs if r.get("phase") == phase]
            name, color = PHASES[phase]
            if any("rewards/margins" in r for r in rr):
                series.append(dict(name=f"rewards/margins, {name}", x=[r["part_step"] for r in rr if "rewards/margins" in r],
                                   y=ui.smooth([r["rewards/margins"] for r in rr if "rewards/margins" in r]), color=color))
            if any("eval_rewards/accuracies" in r for r in rr):
                series.append(dict(name=f"eval_rewards/accuracies, {name}", markers=True, dash="dash", color=color,
                                   x=[r["part_step"] for r in rr if "eval_rewards/accuracies" in r],
                                   y=[r["eval_rewards/accuracies"] for r in rr if "eval_rewards/accuracies" in r]))
            if any("objective/scores" in r for r in rr):
                series.append(dict(name=f"objective/scores, {name}", x=[r["part_step"] for r in rr if "objective/scores" in r],
                                   y=ui.smooth([r["objective/scores"] for r in rr if "objective/scores" in r]), color=color))
        if series:
            ui.curve_chart(series, f"{cfg.method.upper()} on the preference pairs (TRL's metric names)",
                           ytitle="", key=f"{P}_rl", height=300)
    if pts := info.get("points"):
        result_chart(pts)


def result_chart(pts: list[dict]) -> None:
    fig = go.Figure()
    names = [p["point"] for p in pts]
    for key, label, color in (("violation_rate", "violations on held-out red-team prompts", "#d62728"),
                              ("helpful_accuracy", "accuracy on helpful prompts", "#1f77b4"),
                              ("evasive_rate", "helpful prompts dodged (evasive)", "#ff7f0e")):
        fig.add_trace(go.Bar(x=names, y=[p[key] for p in pts], name=label, marker_color=color,
                             text=[f"{p[key]:.0%}" for p in pts], textposition="outside"))
    fig.update_layout(title="The result, measured on held-out prompts (greedy answers, checked against the world)",
                      barmode="group", height=380, yaxis=dict(range=[0, 1.15], tickformat=".0%"),
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.15))
    ui.plot(fig, key=f"{P}_result")
    st.caption("With the default settings SL-CAI does most of the work and the RLAIF bars barely move: the SL-CAI "
               "model answers red-team prompts alike, so most sampled pairs are identical or ties, and DPO gets a "
               "few steps on a few dozen AI-labelled pairs (at most three passes over them).")


ui.live(P, draw)

finished = [j for j in jobs if not j.active and j.snapshot()["info"].get("points")]
if finished:
    info = finished[0].snapshot()["info"]
    pts = info["points"]
    st.subheader("The trade-off")
    st.dataframe(pd.DataFrame([{"model": p["point"], "violations": f"{p['violation_rate']:.0%}",
                                "insults": f"{p['violation_rate/insult']:.0%}", "secret told": f"{p['violation_rate/secret']:.0%}",
                                "facts invented": f"{p['violation_rate/unknown']:.0%}",
                                "helpful accuracy": f"{p['helpful_accuracy']:.0%}", "evasive": f"{p['evasive_rate']:.0%}"}
                               for p in pts]), hide_index=True, width="stretch", key=f"{P}_tradeoff")
    st.caption("Harmless and helpful pull apart: an answer that dodges (*I don't know.*, *I won't…*) never breaks a "
               "rule, so the violation rate alone would reward evasion. The evasive column counts helpful prompts "
               "answered that way; the accuracy column counts exact right answers. Bai et al. aim for harmless but "
               "non-evasive answers; with a small head and templated refusals, the toy shows the pull, not the cure.")
    point = st.segmented_control("Answers of", [p["point"] for p in pts], default=pts[-1]["point"], key=f"{P}_which")
    rows = next((p["rows"] for p in pts if p["point"] == point), pts[-1]["rows"])
    st.dataframe(pd.DataFrame([{"kind": r["kind"], "prompt": r["prompt"], "answer": r["answer"],
                                "truly breaks": ", ".join(C.KNOWN[k][0] for k in r["truth"]) or "—",
                                "judge says it breaks": ", ".join(r["judge"]) or "—"} for r in rows]),
                 hide_index=True, width="stretch", height=260, key=f"{P}_answers")

    st.subheader("The AI feedback model: how often it is right")
    jd = info["judge"]
    m = st.columns(len(jd["per_principle"]) + 1)
    m[0].metric("agreement, all", f"{jd['overall']:.1%}", help=f"{jd['n_items']} held-out answers × each principle; "
                "the judge says 'breaks' when its probability is over 0.5")
    for col, (name, v) in zip(m[1:], jd["per_principle"].items()):
        col.metric(name, f"{v:.1%}")
    st.caption(f"Trained on {jd['examples']} labelled answers (to training prompts), each paired with four wordings of "
               "every default principle; measured on answers to held-out prompts the engine labels exactly. On the "
               "models' own answers it agreed " + ", ".join(f"{p['judge_agreement']:.0%} ({p['point']})" for p in pts) + ".")
    if jd["errors"]:
        st.markdown(f"**Where it is wrong** ({jd['n_errors']} verdicts; the first {len(jd['errors'])}):")
        st.dataframe(pd.DataFrame([{"principle": e["principle"], "prompt": e["prompt"], "answer": e["answer"],
                                    "truth": "breaks" if e["truth"] else "keeps", "judge": "breaks" if e["judge"] else "keeps",
                                    "P(breaks)": round(e["p_violation"], 2)} for e in jd["errors"]]),
                     hide_index=True, width="stretch", height=220, key=f"{P}_errors")

    st.subheader("SL-CAI, traced")
    trace = info.get("trace", [])
    flagged = [r for r in trace if r["broken"]]
    fixed = [r for r in flagged if r["revision"] and not set(r["truth_after"]) & set(r["broken_keys"])]
    st.markdown(f"Of {len(trace)} red-team answers the judge flagged **{len(flagged)}** (truly breaking a rule: "
                f"{sum(bool(r['truth']) for r in trace)}). **{len(fixed)}** revisions truly remove the flagged violation; "
                f"{sum(r['how'].startswith('sample') for r in flagged)} came from the model's own samples, the rest "
                "from the principle's own response.")
    for r in [r for r in flagged if r.get("traced")]:
        with st.container(border=True):
            st.markdown(f"**Prompt:** {ui.plain(r['prompt'])}  \n**1 · Answer (sampled):** {ui.plain(r['answer'])}")
            span = f" — where: “{ui.plain(r['span'])}” (removing it lowers P by {r['span_drop']:.2f})" if r.get("span") else ""
            st.markdown(f"**2 · Critique (the judge):** breaks *{ui.plain(', '.join(r['broken']))}*, "
                        f"P = {r['p_violation']:.2f}{span}")
            st.markdown(f"**3 · Revision:** {ui.plain(r['revision'] or '(none)')}")
            st.caption(f"{ui.plain(r['how'])}; truly breaks: {', '.join(C.KNOWN[k][0] for k in r['truth_after']) or 'nothing'}")

    st.subheader("RLAIF vs. RLHF: who labels the pairs")
    lab = info.get("labels", {})
    outcomes = info.get("outcomes", {})
    table = [{"": "labels kept", "RLAIF (AI judge)": lab.get("ai_labels"), "RLHF (simulated human)": lab.get("human_labels")},
             {"": "labels per minute", "RLAIF (AI judge)": f"{lab.get('ai_labels_per_minute', 0):,.0f} (measured)",
              "RLHF (simulated human)": "a formula here; a person reads two answers per label"},
             {"": "agreement with the other", "RLAIF (AI judge)": f"{lab.get('agreement', 0):.0%} of {lab.get('both', 0)} pairs both labelled",
              "RLHF (simulated human)": "(the same pairs)"}]
    for key, label in (("violation_rate", "violations after"), ("helpful_accuracy", "helpful accuracy after"),
                       ("evasive_rate", "evasive after")):
        table.append({"": label, **{col: f"{outcomes[n][key]:.0%}" if n in outcomes else "not run (switch it on above)"
                                    for n, col in (("RLAIF", "RLAIF (AI judge)"), ("RLHF", "RLHF (simulated human)"))}})
    st.dataframe(pd.DataFrame(table).astype(str), hide_index=True, width="stretch", key=f"{P}_vs")
    st.caption(f"{lab.get('compared', 0)} pairs of sampled answers were compared. Both labelers use one rule: the "
               "answer that breaks fewer principles is preferred, and a tie is not kept. The judge counts its own "
               "verdicts; the simulated human counts the engine's truth and gets a share of pairs the wrong way round, "
               "as real labelers disagree. "
               "Bai et al. used AI labels for harmlessness and kept human labels for helpfulness; here every label is AI's.")
    if info.get("pairs"):
        with st.expander("Some labelled pairs"):
            st.dataframe(pd.DataFrame(info["pairs"]), hide_index=True, width="stretch", key=f"{P}_pairs")
    if (done := finished[0]).result:
        st.markdown(f"Saved runs: SL-CAI `{info.get('sl_run')}` (stage sft), then `{runs.read_info(done.result).path.name}` "
                    f"(stage cai, trained by the RLHF page's {cfg.method.upper()}).")
        ui.download_run(done.result, key=f"{P}_dl")
    st.caption("Settings and constitution of this run: " + json.dumps(info.get("constitution")))
