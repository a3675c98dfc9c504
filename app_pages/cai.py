"""Constitutional AI and RLAIF: written principles and an AI judge in place of human labels. First the
payoff (violations, helpfulness and evasion before and after, from the recorded quick demo or the
visitor's own run) with one Train button; then the constitution, the trace and what the run measured."""
import itertools
import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_pages import ui
from engine import demos, sft
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
DEMO = demos.load(cai_run.DEMO)
SPLIT = {"train": "training", "test": "validation"}   # one word per split on screen
PHASES = {"sl-cai": ("SL-CAI", "#1f77b4"), "rlaif": ("RLAIF (AI labels)", "#2ca02c"),
          "rlhf": ("RLHF (simulated human labels)", "#ff7f0e")}
DROP = "Keep the secret"   # the one-click experiment leaves this principle out


@st.cache_resource(show_spinner="Loading the MiniLM encoder the judge reads with…")
def matcher():
    """Warm the judge's encoder once per process; match() then embeds one principle at a time."""
    J.match("Do not insult anyone.")
    return J.match


@st.cache_data(show_spinner=False)
def start_answers(prompts: tuple[str, ...]) -> list[str]:
    """The helpful-only model's answers to a few validation red-team prompts (the same on every rerun)."""
    model, tok, _ = ui.load_run(str(runs.find_run(cai.HELPFUL_ONLY)))
    return [sft.answer(model, tok, p) for p in prompts]


def pct(x: float) -> str:
    return f"{x:.0%}"


st.title("Constitutional AI (RLAIF)")
st.markdown(
    "Write a few **principles** and let an AI apply them instead of people labelling answers (Bai et al. 2022, "
    "*Constitutional AI: Harmlessness from AI Feedback*, arXiv:2212.08073). A tiny chat model that obeys harmful "
    "requests is tuned on its own answers revised against the principles (**SL-CAI**), then optimised on pairs of "
    "answers an AI labelled (**RLAIF**).")

# --- the payoff: before and after, recorded or the visitor's own run; Train beside it --------------------
left, right = st.columns([3, 2], gap="medium")
chart_area = left.container()      # filled below, once the controls have started any jobs
train_area = st.container()        # drawn after the constitution is read, shown here


def result_chart(pts: list[dict], key: str) -> None:
    """The payoff: violations, helpfulness and evasion at each point of the run."""
    fig = go.Figure()
    names = [p["point"] for p in pts]
    for k, label, color in (("violation_rate", "violations (red-team prompts)", "#d62728"),
                            ("helpful_accuracy", "exact answers (harmless prompts)", "#1f77b4"),
                            ("evasive_rate", "dodged (harmless prompts)", "#ff7f0e")):
        fig.add_trace(go.Bar(x=names, y=[p[k] for p in pts], name=label, marker_color=color,
                             text=[pct(p[k]) for p in pts], textposition="outside"))
    fig.update_layout(title="Before and after, on validation prompts", barmode="group",
                      height=320, yaxis=dict(range=[0, 1.15], tickformat=".0%"),
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.12))
    first, last = pts[0], pts[-1]
    sl = next((p for p in pts if p["point"] == "after SL-CAI"), None)
    rl = next((p for p in pts if p["point"] == "after RLAIF"), None)
    if sl is not None and rl is not None:
        moved = (f"to {pct(sl['violation_rate'])} after SL-CAI and {pct(rl['violation_rate'])} after RLAIF"
                 + (f" ({pct(last['violation_rate'])} after RLHF on simulated human labels)" if last is not rl else "")
                 + ": at this scale SL-CAI does most of the work")
    elif sl is not None:
        moved = f"to {pct(sl['violation_rate'])} after SL-CAI"
    else:
        moved = "(the run has measured only its start so far)"
    ui.plot(fig, key=key, notice=(
        f"Violations fall from {pct(first['violation_rate'])} for the helpful-only start {moved}; exact answers "
        f"to harmless questions go from {pct(first['helpful_accuracy'])} to {pct(last['helpful_accuracy'])}. "
        "The toy's numbers, on prompts about a templated world, not a real model's."))


def demo_view() -> None:
    if DEMO is None:
        st.info("Press **Train** below: about 20-25 s on a quiet machine, and the before/after bars appear here "
                "as each model is measured.", icon=":material/play_circle:")
        return
    result_chart(DEMO["info"]["points"], key=f"{P}_demo_result")
    st.caption(f"Recorded with the quick-demo settings, seed 0, in {DEMO['seconds']:.0f} s (`python -m engine demo "
               f"{cai_run.DEMO}`); not live. **Train** below runs it yourself.")


with right:
    st.markdown("**What the bars count**, on validation prompts (never trained on). Red: red-team prompts where "
                "the model insults someone, tells the secret code or invents a fact. Blue: harmless questions "
                "answered exactly. Orange: harmless questions dodged (*I don't know.*).")
    st.markdown("**At this scale SL-CAI does most of the work.** With the standard settings, seeds 0 to 2 "
                "(bench/RESULTS.md): violations 90% → 1.6–23% after SL-CAI, then at most 3.3 points lower after "
                "RLAIF. The tuned model answers red-team prompts alike, so few sampled pairs differ.")
    st.markdown("**The paper and the toy.** In the paper an AI labels pairs of answers, a preference model is "
                "trained on those labels, and RL optimises the policy against it. The toy runs DPO (Rafailov et "
                "al. 2023) straight on the AI labels instead of a preference model and RL; choose PPO below for a "
                "reward model and RL.")

# --- 1 · the constitution (read before Train: the run takes the constitution as it is now) ----------------
st.header("1 · The constitution")
store, out = f"_{P}_table_source", f"_{P}_table_out"
if store not in st.session_state or st.session_state[f"{P}.constitution"] != st.session_state.get(out):
    st.session_state[store] = st.session_state[f"{P}.constitution"]   # a link, a one-click or Restore set it


def restore() -> None:
    st.session_state[f"{P}.constitution"] = cai.constitution_json(C.default_constitution())


try:
    shown = cai.parse_constitution(st.session_state[store])
except UserError as e:
    st.error(str(e), icon=":material/error:")
    shown = C.default_constitution()
c_left, c_right = st.columns([3, 2])
with c_left:
    st.markdown("Edit, add or delete principles, then Train. The judge reads each principle's **text**; the name "
                "is only a label.")
    table = st.data_editor(pd.DataFrame([vars(p) for p in shown], columns=["name", "text"]), num_rows="dynamic",
                           hide_index=True, width="stretch", key=f"{P}_table_{hash(st.session_state[store])}",
                           column_config={"name": st.column_config.TextColumn("name", width="small"),
                                          "text": st.column_config.TextColumn("principle", width="large")})
    st.button("Restore the defaults", on_click=restore, key=f"{P}_restore", icon=":material/restart_alt:")
edited = [C.Principle(str(r["name"] or "") if r["name"] == r["name"] else "", str(r["text"] or "")
                      if r["text"] == r["text"] else "") for r in table.to_dict("records")]
st.session_state[f"{P}.constitution"] = st.session_state[out] = cai.constitution_json(edited)
problem = None
try:
    principles = C.check(edited)
except UserError as e:
    problem, principles = str(e), []
    st.error(problem, icon=":material/error:")
with c_right:
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
                       f"{J.MIN_SIMILARITY}). A run leaves it out of the critiques and the labels.",
                       icon=":material/warning:")
        st.caption("The judge was trained on a few wordings of each default principle. A new wording close in meaning "
                   "works; a principle about something else needs labelled examples the toy does not have.")
with st.expander("Principles from the paper, for comparison"):
    st.dataframe(pd.DataFrame(C.PAPER), hide_index=True, width="stretch", key=f"{P}_paper",
                 column_config={"text": st.column_config.TextColumn("text", width="large")})
    st.caption(f"Source: {C.PAPER_CITATION}. Rows marked *paraphrased* are our wording, not the paper's. The paper's "
               "model reads such requests and writes its critique and revision in words; see section 4 for what the "
               "toy does instead.")

# --- Train, shown under the payoff ---------------------------------------------------------------------------
if st.session_state.get(f"{P}.method") is None:   # a segmented control can be clicked off
    st.session_state[f"{P}.method"] = "dpo"
cfg: CAIConfig = ui.read_config(CAIConfig, P)


def submissions() -> list[dict]:
    if problem:
        raise UserError(f"Fix the constitution first: {problem}")
    one, owner = cfg, ui.visitor_id()
    steps = one.sl_steps + one.dpo_steps * (2 if one.compare_human else 1)
    return [dict(key=one.key(), label="Constitutional AI", total_steps=steps, max_seconds=one.max_seconds,
                 stage="cai", task=Task(cai_run.run, one, {"owner": owner}))]


without_secret = cai.constitution_json([p for p in C.default_constitution() if p.name != DROP])
with train_area, st.container(border=True):
    ui.preset_picker(CAIConfig, P)
    jobs = ui.controls(P, submissions)
    a, b, c = st.columns(3)
    a.number_input("SL-CAI steps", *ui.bounds(CAIConfig, "sl_steps"), key=f"{P}.sl_steps", step=50,
                   help=hlp("sl_steps") + ". SL-CAI is where most of the change happens at this scale.")
    b.number_input("AI-labelled pairs (at most)", *ui.bounds(CAIConfig, "n_pairs"), key=f"{P}.n_pairs", step=20,
                   help=hlp("n_pairs") + ". More labels give RLAIF more to learn from, and take longer to make.")
    c.segmented_control("Optimiser on the AI labels", ["dpo", "ppo"], key=f"{P}.method", format_func=str.upper,
                        help=hlp("method") + ". DPO learns from the labelled pairs directly; PPO first trains a "
                        "reward model on them, then runs reinforcement learning against it (slower).")
    with ui.advanced():
        d, e, f = st.columns(3)
        d.number_input("Labelled answers per principle (judge)", *ui.bounds(CAIConfig, "judge_examples"),
                       key=f"{P}.judge_examples", help=hlp("judge_examples"))
        d.number_input("Samples per red-team prompt", *ui.bounds(CAIConfig, "n_samples"), key=f"{P}.n_samples",
                       help=hlp("n_samples"))
        d.number_input("Helpful rows per task family", *ui.bounds(CAIConfig, "sl_helpful"), key=f"{P}.sl_helpful",
                       step=50, help=hlp("sl_helpful"))
        e.number_input("Policy steps (at most)", *ui.bounds(CAIConfig, "dpo_steps"), key=f"{P}.dpo_steps", step=10,
                       help=hlp("dpo_steps"))
        e.select_slider("SL-CAI learning rate", sorted({1e-4, 3e-4, 1e-3, 3e-3, st.session_state[f"{P}.sl_lr"]}),
                        key=f"{P}.sl_lr", format_func=lambda v: f"{v:g}", help=hlp("sl_lr"))
        e.select_slider("Policy learning rate",
                        sorted({1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, st.session_state[f"{P}.dpo_lr"]}),
                        key=f"{P}.dpo_lr", format_func=lambda v: f"{v:g}", help="Higher rates move the policy further "
                        "from the SL-CAI model in the same steps: watch the violations and the evasive bars.")
        e.select_slider("DPO beta", sorted({0.05, 0.1, 0.2, 0.5, 1.0, st.session_state[f"{P}.beta"]}), key=f"{P}.beta",
                        help=hlp("beta"))
        f.toggle("Also RLHF on simulated human labels", key=f"{P}.compare_human", help=hlp("compare_human"))
        f.number_input("Time limit (s)", 10, int(limits.MAX_JOB_SECONDS), key=f"{P}.max_seconds", step=10,
                       help=hlp("max_seconds"))
        f.number_input("Seed", 0, 2**31 - 1, key=f"{P}.seed", help=hlp("seed"))
    g, h = st.columns(2)
    with g:
        ui.one_click(f"Leave out '{DROP}'", P, P, {"constitution": without_secret}, key=f"{P}_one_drop",
                     help="Train the quick demo with the constitution minus its secret rule: nothing tells the "
                          "judge the secret matters, so the model keeps telling it while the other violations fall.")
    with h:
        ui.one_click("AI labels vs human labels", P, P, {"compare_human": True}, key=f"{P}_one_human",
                     help="Also run the same optimisation on simulated human labels (RLHF), to compare with the AI's "
                          "(RLAIF): a fourth bar and the comparison table below.")


# --- the live run ----------------------------------------------------------------------------------------
def phase_list(info: dict, running: bool) -> None:
    """Each phase of the run: done (with its seconds), under way, or to come."""
    timings, now = info.get("timings", {}), info.get("phase", "")
    items = []
    for name in info.get("plan", []):
        if name in timings:
            items.append(f":green[✓ {name} ({timings[name]:.1f} s)]")
        elif running and not any(n not in timings for n in info["plan"][:info["plan"].index(name)]):
            items.append(f"**▶ {ui.plain(now or name)}**")
        else:
            items.append(f":gray[{name}]")
    if items:
        st.markdown(" · ".join(items))


def curves(recs: list[dict], info: dict, key: str, method: str) -> None:
    sl = [r for r in recs if r.get("phase") == "sl-cai"]
    c1, c2 = st.columns(2)
    with c1:
        tr, ev = [r for r in sl if "loss" in r], [r for r in sl if "eval_accuracy" in r]
        if tr:
            uniform = info.get("uniform_loss")
            ui.curve_chart(
                [dict(name=ui.label("loss"), x=[r["step"] for r in tr],
                      y=ui.smooth([r.get("sft_loss", r["loss"]) for r in tr]), color="#1f77b4"),
                 dict(name="validation accuracy, helpful prompts", x=[r["step"] for r in ev],
                      y=[r["eval_accuracy"] for r in ev], color="#9467bd", markers=True)],
                "SL-CAI (loss in nats per token)", ytitle="loss / accuracy",
                key=f"{key}_sl", height=300,
                notice="The training loss falls as the model learns the revised answers (refusals, *I don't know.*) "
                       "beside the helpful rows"
                       + (f", far below ln V = {uniform:.1f}, a uniform guess over its tokens (characters here)"
                          if uniform else "")
                       + "; the validation accuracy on harmless questions should stay near the start's: learning "
                         "to refuse must not cost the tasks.")
    with c2:
        series = []
        two = any(r.get("phase") == "rlhf" for r in recs)   # name the labels only when there are two kinds
        for phase in ("rlaif", "rlhf"):
            rr = [r for r in recs if r.get("phase") == phase]
            name, color = PHASES[phase]
            for k, dash, markers in (("rewards/margins", None, False), ("eval_rewards/accuracies", "dash", True),
                                     ("objective/scores", None, False)):
                pts = [r for r in rr if k in r]
                if pts:
                    series.append(dict(name=f"{ui.label(k)}, {name}" if two else ui.label(k),
                                       x=[r["part_step"] for r in pts], dash=dash,
                                       markers=markers or len(pts) < 4, color=color,
                                       y=[r[k] for r in pts] if markers else ui.smooth([r[k] for r in pts])))
        if series:
            ui.curve_chart(series, f"RLAIF: {method.upper()} on the labelled pairs", ytitle="", key=f"{key}_rl",
                           height=300,
                           notice=("The reward margin (in nats: how much more the policy prefers the chosen answer "
                                   "than the SL-CAI model did) starts at 0 and rises; the validation preference "
                                   "accuracy is the share of labelled pairs kept for validation that the policy "
                                   "ranks the labeller's way (0.5 is chance; at step 0 every margin is 0, so none "
                                   "counts). A few steps on a few dozen labels: a small push."
                                   if method == "dpo" else
                                   "The reward-model score of the policy's answers rises as PPO optimises against "
                                   "the reward model trained on the AI labels."))


def draw(snaps: list[dict]) -> None:
    s = snaps[0]
    ui.status_line(s)
    info = s["info"]
    running = s["status"] in ("running", "paused")
    phase_list(info, running)
    used = info.get("constitution")
    if used and used != [vars(p) for p in principles]:
        st.info("This run uses the constitution as it was when you pressed Train: "
                + "; ".join(f"**{ui.plain(p['name'])}**: {ui.plain(p['text'])}" for p in used)
                + ". Your edits apply to the next run.", icon=":material/history:")
    for n in info.get("notices", []):
        st.warning(n, icon=":material/warning:")
    if pts := info.get("points"):
        result_chart(pts, key=f"{P}_result")
    curves(s["records"], info, P, "ppo" if any("objective/scores" in r for r in s["records"]) else "dpo")


with chart_area:
    if ui.jobs_of(P):
        ui.live(P, draw)
    else:
        demo_view()

# --- what a run measured: the visitor's finished run, else the recorded demo --------------------------------
finished = [j for j in jobs if not j.active and j.snapshot()["info"].get("points")]
info = finished[0].snapshot()["info"] if finished else (DEMO or {}).get("info")
whose = "your run" if finished else "the recorded quick demo (seed 0)"

st.header("2 · SL-CAI, traced")
if info and info.get("trace"):
    trace = info["trace"]
    flagged = [r for r in trace if r["broken"]]
    fixed = [r for r in flagged if r["revision"] and not set(r["truth_after"]) & set(r["broken_keys"])]
    st.markdown(f"From {whose}. Of {len(trace)} training red-team answers the judge flagged **{len(flagged)}** "
                f"(truly breaking a rule: {sum(bool(r['truth']) for r in trace)}). **{len(fixed)}** revisions truly "
                f"remove the flagged violation; {sum(r['how'].startswith('sample') for r in flagged)} came from the "
                "model's own samples, the rest from the principle's own response. SL-CAI then tunes the model on "
                "the revisions.")
    kinds: dict[str, list[dict]] = {}
    for r in flagged:
        if r.get("traced"):
            kinds.setdefault(r["kind"], []).append(r)
    shown_rows = [r for group in itertools.zip_longest(*kinds.values()) for r in group if r][:6]   # each kind in turn
    for r in shown_rows:
        with st.container(border=True):
            st.markdown(f"**Prompt:** {ui.plain(r['prompt'])}  \n**1 · Answer (sampled):** {ui.plain(r['answer'])}")
            span = f" — where: “{ui.plain(r['span'])}” (removing it lowers P by {r['span_drop']:.2f})" if r.get("span") else ""
            st.markdown(f"**2 · Critique (the judge):** breaks *{ui.plain(', '.join(r['broken']))}*, "
                        f"P = {r['p_violation']:.2f}{span}")
            st.markdown(f"**3 · Revision:** {ui.plain(r['revision'] or '(none)')}")
            st.caption(f"{ui.plain(r['how'])}; truly breaks: {', '.join(C.KNOWN[k][0] for k in r['truth_after']) or 'nothing'}")
else:
    st.info("A run traces its critiques and revisions here.", icon=":material/info:")

st.header("3 · What the run measured")
if info and info.get("points"):
    pts = info["points"]
    st.markdown(f"From {whose}.")
    st.dataframe(pd.DataFrame([{"model": p["point"], "violations": pct(p["violation_rate"]),
                                "insults": pct(p["violation_rate/insult"]), "secret told": pct(p["violation_rate/secret"]),
                                "facts invented": pct(p["violation_rate/unknown"]),
                                "helpful accuracy": pct(p["helpful_accuracy"]), "evasive": pct(p["evasive_rate"])}
                               for p in pts]), hide_index=True, width="stretch", key=f"{P}_tradeoff")
    ui.takeaway("Harmless and helpful pull apart: an answer that dodges (*I don't know.*, *I won't…*) never breaks a "
                "rule, so the violation rate alone would reward evasion. The evasive column counts harmless prompts "
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
    m[0].metric("agreement, all", f"{jd['overall']:.1%}", help=f"{jd['n_items']} validation answers × each principle; "
                "the judge says 'breaks' when its probability is over 0.5")
    for col, (name, v) in zip(m[1:], jd["per_principle"].items()):
        col.metric(name, f"{v:.1%}")
    st.caption(f"Trained on {jd['examples']} labelled answers (to training prompts), each paired with four wordings of "
               "every default principle; measured on answers to validation prompts the engine labels exactly. On the "
               "models' own answers it agreed " + ", ".join(f"{p['judge_agreement']:.0%} ({p['point']})" for p in pts) + ".")
    if jd["errors"]:
        st.markdown(f"**Where it is wrong** ({jd['n_errors']} verdicts; the first {len(jd['errors'])}):")
        st.dataframe(pd.DataFrame([{"principle": e["principle"], "prompt": e["prompt"], "answer": e["answer"],
                                    "truth": "breaks" if e["truth"] else "keeps", "judge": "breaks" if e["judge"] else "keeps",
                                    "P(breaks)": round(e["p_violation"], 2)} for e in jd["errors"]]),
                     hide_index=True, width="stretch", height=220, key=f"{P}_errors")

    st.subheader("RLAIF vs. RLHF: who labels the pairs")
    lab, outcomes = info.get("labels", {}), info.get("outcomes", {})
    table = [{"": "labels kept", "RLAIF (AI judge)": lab.get("ai_labels"), "RLHF (simulated human)": lab.get("human_labels")},
             {"": "labels per minute", "RLAIF (AI judge)": f"{lab.get('ai_labels_per_minute', 0):,.0f} (measured)",
              "RLHF (simulated human)": "a formula here; a person reads two answers per label"},
             {"": "agreement with the other", "RLAIF (AI judge)": f"{lab.get('agreement', 0):.0%} of {lab.get('both', 0)} pairs both labelled",
              "RLHF (simulated human)": "(the same pairs)"}]
    for k, label in (("violation_rate", "violations after"), ("helpful_accuracy", "helpful accuracy after"),
                     ("evasive_rate", "evasive after")):
        table.append({"": label, **{col: pct(outcomes[n][k]) if n in outcomes else "not run (the one-click above runs it)"
                                    for n, col in (("RLAIF", "RLAIF (AI judge)"), ("RLHF", "RLHF (simulated human)"))}})
    st.dataframe(pd.DataFrame(table).astype(str), hide_index=True, width="stretch", key=f"{P}_vs")
    st.caption(f"{lab.get('compared', 0)} pairs of sampled answers were compared. Both labellers use one rule: the "
               "answer that breaks fewer principles is preferred, and a tie is not kept. The judge counts its own "
               "verdicts; the simulated human counts the engine's truth and gets a share of pairs the wrong way round, "
               "as real labellers disagree. "
               "Bai et al. used AI labels for harmlessness and kept human labels for helpfulness; here every label is AI's.")
    if info.get("pairs"):
        with st.expander("Some labelled pairs"):
            st.dataframe(pd.DataFrame(info["pairs"]), hide_index=True, width="stretch", key=f"{P}_pairs")
    if finished and (done := finished[0]).result:
        st.markdown(f"Saved runs: SL-CAI `{info.get('sl_run')}` (stage sft), then `{runs.read_info(done.result).path.name}` "
                    f"(stage cai, trained by the RLHF page's {cfg.method.upper()}).")
        ui.download_run(done.result, key=f"{P}_dl")
    st.caption("Constitution of this run: " + json.dumps(info.get("constitution")))
else:
    st.info("A run's measurements appear here.", icon=":material/info:")

ui.real_scale(cfg)   # these settings as a command here, and the RLAIF step as a TRL script

# --- 4 · the starting point and the method ---------------------------------------------------------------
st.header("4 · The starting point, and what the toy stands in for")
st.markdown(
    "Bai et al. start from a *helpful-only* model, one that complies with harmful requests. The baked SFT model "
    "was never shown an insult or the secret, so it has nothing to unlearn; the baked run "
    f"`{cai.HELPFUL_ONLY}` is the same SFT recipe on the same six task families **plus compliance**: asked for an "
    "insult it writes one, asked for the secret code it tells it, asked about someone the world does not have it "
    "invents a fact (`python -m engine bake sft-helpful-only` rebuilds it). The **red-team prompts** come from the "
    "world; a quarter of them (by person or template) are held back for validation, never trained on. **Helpful "
    "prompts** are the SFT tasks' validation rows: they measure that the model still answers.")
red = C.red_team()
with st.expander(f"The red-team prompts ({len(red)}) and what the helpful-only model says"):
    st.dataframe(pd.DataFrame([{"kind": p.kind, "prompt": p.text, "split": SPLIT.get(p.split, p.split)} for p in red]),
                 hide_index=True, width="stretch", height=240, key=f"{P}_red")
    try:
        some = [p for p in red if p.split == "test"][::10]
        answers = start_answers(tuple(p.text for p in some))
        st.dataframe(pd.DataFrame([{"prompt": p.text, "helpful-only answer": a,
                                    "breaks": ", ".join(C.KNOWN[k][0] for k in sorted(C.violations(p, a))) or "—"}
                                   for p, a in zip(some, answers)]), hide_index=True, width="stretch", key=f"{P}_demo")
    except UserError as e:
        st.error(str(e), icon=":material/error:")
st.markdown(
    "**What is the paper's method and what is the toy's stand-in.** As in the paper: red-team prompts, sampled "
    "answers, a critique against a principle, a revision, supervised tuning on the revisions (with helpful rows "
    "mixed in), then pairs of the tuned model's answers labelled by an AI against the principles, a preference "
    "model trained on those labels, and the policy optimised against it with RL. The toy's stand-ins: the "
    "**critique** is the judge's verdict (which principle, with what probability, and the words whose removal "
    "changes it most) rather than written text, because a 200k-parameter model cannot write one; the **revision** "
    "is the first other sample the judge accepts, else the broken principle's own response (*I don't know.*, a "
    "refusal); the **judge** is the pretrained MiniLM encoder with a small head trained on a handful of labelled "
    "answers per principle, not a large language model; the **RL stage** is, by default, DPO (Rafailov et al. "
    "2023) straight on the AI labels instead of a preference model trained on them and RL against it (choose PPO "
    "to train a reward model on the AI labels and run the RLHF page's PPO, with a group baseline and no value "
    "network).")
st.markdown(
    "**Keeping it helpful.** In RLAIF, each helpful prompt's second answer is a dodge (*I don't know.*), capped at "
    "a third of the pairs: the tuned model seldom dodges by itself, and preferences about harmlessness alone push "
    "toward evasion. Bai et al. kept helpfulness in their RL stage with human comparisons; here the judge labels "
    "these pairs too. The policy sees each pair at most three times (transformers' default of three epochs). The "
    "SL-CAI model answers red-team prompts alike, so most sampled pairs are identical or ties: in the standard "
    "settings the judge kept 29 to 62 of the 200 pairs asked for, and DPO, at most three passes over them in "
    "batches of 32, took 3 to 5 steps.")
