"""Instruction tuning (SFT): teach the pretrained base to answer. The first screen is the baked
base and the baked SFT run answering the same prompts; then what the loss counts, and a run of your own."""
import hashlib
import html
import json
import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_pages import ui
from engine import demos, sft
from engine.core import limits, runs
from engine.core.config import UserError
from engine.core.report import Task
from engine.core.sampling import context_length
from engine.sft import SFTConfig
from engine.text import instructions
from engine.text.instructions import FAMILIES, Example

P = "sft"  # widget-key prefix and job slot of this page
SWEEP = "sft_sweep"
ui.init_config(SFTConfig, P)
hlp = lambda name: ui.widget_help(SFTConfig, name)  # noqa: E731
st.session_state.setdefault(f"{P}_fams", [f for f in st.session_state[f"{P}.families"].split(",") if f in FAMILIES])
SPLIT_SHOWN = {"train": "training", "test": "validation"}     # the data's split names -> the page's words
SPLIT_DATA = {v: k for k, v in SPLIT_SHOWN.items()}

st.title("Instruction tuning (SFT)")
st.markdown(
    "A pretrained model continues text; it does not answer. **Supervised fine-tuning** trains it on "
    "(instruction, answer) pairs written in a **chat template**, so that after `<|assistant|>` it writes an answer "
    "and stops: the first of InstructGPT's three steps (Ouyang et al. 2022). Here, the same small model before and "
    "after, on prompts it never trained on:")

# --- the payoff: the baked base and the baked SFT run -------------------------------------------------
recorded = demos.load("sft-base-vs-tuned")
baked_sft = runs.find_run("", "sft")
baked_evals = [r for r in runs.read_metrics(baked_sft) if "eval_accuracy" in r]
left, right = st.columns([6, 5])
with left:
    b0, b1 = baked_evals[0]["eval_accuracy"], baked_evals[-1]["eval_accuracy"]
    st.markdown(f"#### {b0:.0%} → {b1:.0%} of validation prompts answered",
                help="pretrain-base-gpt (the baked pretrained model, asked in the chat template), then sft-base (the "
                     f"baked SFT run tuned from it, {baked_evals[-1]['step']:,} steps), on the "
                     f"{recorded['info']['test_examples'] if recorded else 245} validation prompts training never "
                     "shows. " + ui.metric_help("eval_accuracy"))
    if recorded:
        rows = {}
        for r in recorded["info"]["before_after"]:
            rows.setdefault(r["family"], r)   # one prompt per family on the first screen
        def mark(said: str, want: str) -> str:
            said = said.replace("\n", " ")
            return ("✓ " if said == want else "✗ ") + ((said if len(said) <= 20 else said[:19] + "…") or "(nothing)")

        st.dataframe(pd.DataFrame([{"prompt": r["prompt"], "base model": mark(r["base (greedy)"], r["expected"]),
                                    "after SFT": mark(r["tuned (greedy)"], r["expected"])} for r in rows.values()]),
                     hide_index=True, width="stretch", key=f"{P}_payoff_table",
                     column_config={"prompt": st.column_config.TextColumn(width=150),   # all three fit a phone
                                    "base model": st.column_config.TextColumn(width=110),
                                    "after SFT": st.column_config.TextColumn(width=110)})
        ui.takeaway("Given `<|user|>` and `<|assistant|>`, tokens it never saw, the base model carries on a story; "
                    "after SFT it answers and stops. ✓: exactly the expected answer. Recorded from the two baked "
                    "runs, greedy.")
    else:
        st.info("The recorded answers are missing (`python -m engine demo sft-base-vs-tuned` records them). Train "
                "below to see your own.", icon=":material/info:")
with right:
    strip = st.container()     # what the loss counts: filled once the data is read

work = st.container()          # what the loss counts, and your own run: drawn here, filled once the data is read
live_box = st.container()
after_box = st.container()


@st.cache_data(max_entries=8, show_spinner=False)
def builtin_rows(seed: int, n_train: int, families: tuple) -> list[dict]:
    return [vars(e) for e in instructions.build(seed, n_train, families=families)]


@st.cache_resource(max_entries=4, show_spinner=False)
def chat_tokenizer(base_path: str):
    return sft.chat_tokenizer(ui.load_run(base_path)[1])


@st.cache_data(max_entries=8, show_spinner=False)
def count_truncated(base_path: str, _key: str, _examples: list[Example], ctx: int) -> int:
    """Formatting every row takes a second or two: once per data set (`_key` is its digest); the job
    then reuses the formatted rows (sft.encode_all)."""
    return sft.count_truncated(chat_tokenizer(base_path), _examples, ctx)


def digest(examples: list[Example]) -> str:
    return hashlib.sha1(json.dumps([vars(e) for e in examples]).encode()).hexdigest()[:12]


# --- the data (drawn below the first screen; read first, since the run above uses it) ----------------
st.divider()
st.header("The instruction data")
bases = [r for r in ui.my_runs("pretrain") if r.objective == "clm"]
c1, c2, c3 = st.columns([3, 4, 2])
c1.selectbox("Base model", [""] + [r.path.name for r in bases if not r.baked], key=f"{P}.base", help=hlp("base"),
             format_func=lambda n: n or "the baked base (4 layers × 64, trained on the world stories)")
c2.multiselect("Task families", FAMILIES, key=f"{P}_fams", help="built-in families; none if you only use uploaded rows")
st.session_state[f"{P}.families"] = ",".join(st.session_state[f"{P}_fams"])
c3.select_slider("Examples per family", sorted({10, 30, 100, 300, 1000, 2000, st.session_state[f"{P}.n_train"]}),
                 key=f"{P}.n_train", help=hlp("n_train") + "; facts has 135 at most, label about 2,000")
st.caption(
    "**facts**: questions about people in the stories, answered with the sentence the stories use; validation "
    "asks about facts no training question asks about, so the answer must come from pretraining. **copy**, "
    "**reverse**, **uppercase**: transformations of a short phrase. **label**: the topic of a sentence "
    "(pet, food or color). **pattern**: the next word of a repeating sequence. Every family keeps 40 "
    "validation prompts (facts: 45) that training never shows.")

up = st.file_uploader("Add rows from JSON Lines (TRL's formats: `prompt`/`completion`, or `messages`)",
                      type=["jsonl", "json"], key=f"{P}_upload", max_upload_size=limits.MAX_UPLOAD_MB,
                      help='One object per line, e.g. {"prompt": "Repeat: red hat", "completion": "red hat"} or '
                           '{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}. Optional keys '
                           '"family" and "split" ("train" or "test", as in the files TRL reads; "test" rows are this '
                           "page's validation rows); without a split, every fifth row is kept for validation.")
uploaded: list[Example] = ui.jsonl_upload(up, instructions.parse_jsonl, "rows added")[0] if up is not None else []

rows = builtin_rows(st.session_state[f"{P}.seed"], st.session_state[f"{P}.n_train"], tuple(st.session_state[f"{P}_fams"])) \
    + [vars(e) for e in uploaded]
source = hashlib.sha1(json.dumps(rows).encode()).hexdigest()[:12]
shown = pd.DataFrame([{**r, "split": SPLIT_SHOWN.get(r["split"], r["split"])} for r in rows],
                     columns=["family", "prompt", "completion", "split"])
edited = st.data_editor(shown, num_rows="dynamic", hide_index=True, width="stretch", height=280,
                        key=f"{P}_table_{source}", column_config={
                            "split": st.column_config.SelectboxColumn("split", options=list(SPLIT_DATA), required=True),
                            "prompt": st.column_config.TextColumn("prompt", width="large"),
                            "completion": st.column_config.TextColumn("completion (the answer)", width="medium")})
examples, problems = instructions.from_rows([{**r, "split": SPLIT_DATA.get(r["split"], r["split"])}
                                             for r in edited.to_dict("records")])
if problems:
    st.warning(f"{len(problems)} rows are left out: " + "; ".join(problems[:8]) + (" …" if len(problems) > 8 else ""),
               icon=":material/warning:")
counts = pd.crosstab(pd.Series([e.family for e in examples], name="family"),
                     pd.Series([e.split for e in examples], name="split")) if examples else pd.DataFrame()
st.caption("Rows used: " + (", ".join(f"{f} {r.get('train', 0)} training / {r.get('test', 0)} validation"
                                       for f, r in counts.iterrows()) if examples else "none yet."))

cfg: SFTConfig = ui.read_config(SFTConfig, P)
data_key = digest(examples)
ctx = 64
try:
    base_path = str(runs.find_run(cfg.base, "pretrain"))
    tok = chat_tokenizer(base_path)
    ctx = context_length(ui.load_run(base_path)[0])
    sft.check_vocab(tok, examples)
    if n_cut := count_truncated(base_path, data_key, examples, ctx):
        st.warning(f"{n_cut} rows are longer than the base's context of {ctx} tokens: they keep their answer and "
                   "lose the start of the prompt.", icon=":material/content_cut:")
except UserError as e:
    st.error(str(e), icon=":material/error:")
    tok = None
V = len(tok) if tok is not None else 103
LN_V = math.log(V)

st.header("The chat template")
st.markdown("Set on the tokenizer as `tok.chat_template` (Jinja), with `<|user|>` and `<|assistant|>` added as "
            "special tokens, so `tok.apply_chat_template(messages)` formats every example, here and on the saved "
            "model:")
st.code(sft.CHAT_TEMPLATE, language="django")

# --- what the loss counts, and your own run (drawn in `work`, near the top) ---------------------------
box = work
with strip:
    st.markdown("**What SFT trains on**: one row in the chat template")
    t1, t2 = st.columns([3, 2])
    t1.toggle("Loss on the answer only", key=f"{P}.mask_prompt",
              help=hlp("mask_prompt") + " (the prompt's labels are -100, which the loss skips)")
    if tok is not None and examples:
        i = t2.number_input("Row of the data", 1, len(examples), 1, key=f"{P}_show",
                            label_visibility="collapsed") - 1
        view = sft.token_view(tok, examples[i], st.session_state[f"{P}.mask_prompt"], ctx)
        # Every piece of the rows is escaped: user text is shown as text, never run as HTML.
        st.html('<div style="font-family:monospace;line-height:2.1;white-space:pre-wrap">' + "".join(
            f'<span style="background:{"#bbf7d0" if counted else "#e5e7eb"};border-radius:3px;padding:2px 1px;'
            f'margin-right:1px;{"font-weight:600;" if counted else "color:#6b7280;"}">{html.escape(piece)}</span>'
            for piece, counted in view) + "</div>")
        n = sum(c for _, c in view)
        st.caption(f"{len(view)} tokens; the {n} green ones are labels the loss counts, the grey ones are "
                   "labelled -100 and only read. Each label is the token to predict from everything before it: "
                   "masked, the model learns to answer, not to write questions (TRL's `completion_only_loss`).")
cfg = ui.read_config(SFTConfig, P)

with box:
    st.markdown("**Train it yourself.** The quick demo takes 20-25 s on a quiet machine (longer when it is busy); "
                "the one-click experiment below it turns replay off.")
    controls_row = st.container()   # Train first: on a phone it comes before the settings, not after them
    pre, a, b = st.columns([4, 3, 3])
    with pre:
        ui.preset_picker(SFTConfig, P)
    a.slider("Replay share", 0.0, 0.9, key=f"{P}.replay", step=0.05,
             help=hlp("replay") + ". 0 lets the model forget its stories: see the one-click experiment.")
    b.toggle("Compare masked and unmasked", key=f"{P}.compare_masking",
             help=hlp("compare_masking") + ": two runs, two curves")
    with b, ui.advanced():
        c, d, e = st.container(), st.container(), st.container()
        c.select_slider("Learning rate", sorted({1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, st.session_state[f"{P}.lr"]}),
                        key=f"{P}.lr", format_func=lambda v: f"{v:g}", help=hlp("lr"))
        c.number_input("Steps", 1, 100_000, key=f"{P}.steps", step=100, help=hlp("steps"))
        d.number_input("Batch size", 2, 256, key=f"{P}.batch_size", help=hlp("batch_size"))
        d.number_input("Warmup steps", 0, 100_000, key=f"{P}.warmup", step=10, help=hlp("warmup"))
        e.number_input("Evaluate every", 1, 100_000, key=f"{P}.eval_every", step=50, help=hlp("eval_every"))
        e.number_input("Time limit (s)", 1, int(limits.MAX_JOB_SECONDS), key=f"{P}.max_seconds", step=5,
                       help=hlp("max_seconds"))
        c.number_input("Seed", 0, 2**31 - 1, key=f"{P}.seed", help=hlp("seed"))
        d.toggle("bf16 autocast", key=f"{P}.bf16", help=hlp("bf16"))
        st.caption("AdamW, warmup then cosine decay to a tenth (over the steps, or the time limit if it comes first), "
                   "gradients clipped at 1.0; each step draws the families equally.")
    cfg = ui.read_config(SFTConfig, P)

LABELS = {True: "answers only (masked)", False: "every token (unmasked)"}
COLORS = {LABELS[True]: "#1f77b4", LABELS[False]: "#ff7f0e"}


def submissions() -> list[dict]:
    if tok is None:
        raise UserError("Fix the data first (see the message below the first screen).")
    owner, rows = ui.visitor_id(), list(examples)
    return [dict(key=one.key("train", data_key), label=LABELS[one.mask_prompt], total_steps=one.steps,
                 max_seconds=one.max_seconds, stage="sft",
                 task=Task(sft.run, one, {"examples": rows, "owner": owner}))
            for one in cfg.variants()]


with controls_row:
    jobs = ui.controls(P, submissions)
    ui.one_click("Watch forgetting: no replay", P, P, {"replay": 0.0, "compare_masking": False},
                 help="The same quick demo with no pretraining text in the batches: the loss on the base's own "
                      "stories climbs to a uniform guess, and the facts family (which needs what pretraining "
                      "stored) falls behind.")
with box:
    st.caption(f"Replay: {round(cfg.replay * cfg.batch_size)} of the {cfg.batch_size} rows in each batch are windows "
               "of the base's own corpus, still trained to predict the next token, added to the instruction loss "
               "with weight 1: replay (rehearsal) of pretraining text during SFT, against forgetting. It is not "
               "InstructGPT's PPO-ptx, which mixed pretraining gradients into the objective of the RL stage, the γ "
               "term of its eq. 2, not into SFT (Ouyang et al. 2022, §3.5). Measured with the quick demo (seed 0): "
               "without replay the loss on the base's stories rose from 0.17 to 4.6, as bad as a uniform guess "
               "(ln 103 = 4.6), and facts fell to 13% of validation prompts; with a quarter replayed, 0.45 and 62%.")


def train_loss(r: dict) -> float:
    return r.get("sft_loss", r["loss"])


def draw(snaps: list[dict]) -> None:
    for s in snaps:
        ui.status_line(s)
    loss, acc, forget = [], [], []
    for s in snaps:
        tr = [r for r in s["records"] if "loss" in r]
        ev = [r for r in s["records"] if "eval_loss" in r]
        base = [r for r in s["records"] if "base_eval_loss" in r]
        color, name = COLORS.get(s["label"]), s["label"]
        tag = "" if len(snaps) == 1 else f", {name.split('(')[-1].rstrip(')')}"   # short legends: they flow in rows
        if tr:
            loss.append(dict(name=f"training{tag}", x=[r["step"] for r in tr],
                             y=ui.smooth([train_loss(r) for r in tr]), color=color))
        if ev:
            loss.append(dict(name=f"validation{tag}", x=[r["step"] for r in ev], y=[r["eval_loss"] for r in ev],
                             color=color, dash="dash", markers=True))
            acc.append(dict(name=f"all families{tag}", x=[r["step"] for r in ev],
                            y=[r["eval_accuracy"] for r in ev], color=color, markers=True))
        if base:
            forget.append(dict(name=name, x=[r["step"] for r in base], y=[r["base_eval_loss"] for r in base],
                               color=color, markers=True))
    if not loss:
        return
    first = snaps[0]
    ev0 = [r for r in first["records"] if "eval_accuracy" in r]
    palette = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
    for i, f in enumerate(first["info"].get("families", [])):
        acc.append(dict(name=f, x=[r["step"] for r in ev0], y=[r.get(f"eval_accuracy/{f}", 0) for r in ev0],
                        color=palette[i % len(palette)], dash="dot"))
    left, right = st.columns(2)
    with left:
        ui.curve_chart(loss, "Loss on the instruction rows", ytitle="nats per token", key=f"{P}_loss",
                       hlines=[(LN_V, f"uniform guess: ln {V} = {LN_V:.1f}")],
                       notice=f"It starts near 8, above a uniform guess over the {V} tokens (ln {V} = {LN_V:.1f}): "
                              "the base model never saw `<|user|>` or `<|assistant|>` (new tokens, their embeddings "
                              "drawn around the average of the others), so it confidently carries on a story where "
                              "an answer should be, and a confident wrong guess costs more than a uniform one. Only "
                              "the green (answer) tokens count; replayed story text is not in these lines.")
    with right:
        upto = max((x for a in acc for x in a["x"]), default=0)
        near = [r for r in baked_evals if r["step"] <= upto]
        baked = dict(name="the baked run", x=[r["step"] for r in near], y=[r["eval_accuracy"] for r in near],
                     color="#555555", dash="dash")
        end = baked_evals[-1]
        ui.curve_chart(acc + [baked], "Validation prompts answered exactly (per family: dotted)",
                       ytitle="exact match", key=f"{P}_acc",
                       hlines=[(0.0, "the base model"), (end["eval_accuracy"], f"the baked run at {end['step']:,} steps")],
                       notice="The base model gets none (step 0). The quick demo's 500 steps reach about half, label "
                              "and pattern first, the transformations later; the dark grey dashed line is the baked "
                              f"run, whose learning rate decays over {end['step']:,} steps (its end: the upper line). "
                              "Facts climb only as far as pretraining stored them.")
    if forget:
        before = first["info"].get("base_loss_before")
        ui.curve_chart(forget, "Forgetting: loss on the base's own validation stories", key=f"{P}_forget",
                       height=260, ytitle="nats per token",
                       hlines=([(before, f"the base before tuning: {before:.2f}")] if before else [])
                       + [(LN_V, f"uniform guess: {LN_V:.1f}")],
                       notice="With a quarter of each batch replayed it rises a little and stays far below a "
                              "uniform guess; with no replay (the one-click experiment) it climbs to a uniform guess "
                              "within a few hundred steps: the model forgets its stories, and the facts family with "
                              "them.")
    if len(snaps) == 2:
        st.caption("Compare the dashed validation losses and the accuracies: both score the answers only. The solid "
                   "training losses measure different things (the unmasked run is also scored on predicting the "
                   "prompts, which are partly random), so they are not comparable with each other.")
    for s in snaps:
        last = next((r for r in reversed(s["records"]) if "loss" in r), None)
        ev = next((r for r in reversed(s["records"]) if "eval_loss" in r), None)
        st.markdown(f"**{s['label']}**" + (f" · {s['info']['train_examples']:,} training rows, "
                                           f"{s['info']['test_examples']} validation rows" if s["info"] else ""))
        m = st.columns(6)
        m[0].metric(ui.label("loss"), f"{train_loss(last):.3f}" if last else "–",
                    help=ui.metric_help("loss", "Cross-entropy on the counted tokens of the instruction rows "
                                                "(replayed rows not included), nats per token."))
        m[1].metric(ui.label("mean_token_accuracy"), f"{last['mean_token_accuracy']:.1%}" if last else "–",
                    help=ui.metric_help("mean_token_accuracy", "Share of counted tokens that are the model's top "
                                                               "guess, this batch."))
        m[2].metric(ui.label("eval_loss"), f"{ev['eval_loss']:.3f}" if ev else "–",
                    help=ui.metric_help("eval_loss", "Validation rows, answer tokens only."))
        m[3].metric(ui.label("eval_accuracy"), f"{ev['eval_accuracy']:.0%}" if ev else "–",
                    help=ui.metric_help("eval_accuracy", "Validation answers the model writes exactly with greedy "
                                                         "decoding (checked in one teacher-forced pass)."))
        m[4].metric("loss on the base's stories", f"{ev['base_eval_loss']:.3f}" if ev and "base_eval_loss" in ev
                    else "–", help=ui.metric_help("base_eval_loss", "The base's own validation text: rising means "
                                                                    "forgetting."))
        m[5].metric("tokens/s", f"{last['tokens_per_sec']:,.0f}" if last else "–")


with live_box:
    # Once a second, not twice: a redraw of these three charts holds Python for about 0.13 s, and the training
    # thread shares the process (measured: the quick demo took 30 s instead of 23 s with a redraw every 0.5 s).
    ui.live(P, draw, every=1.0)

finished = [j for j in jobs if not j.active and j.result]
if finished:
    with after_box:
        job = finished[0]
        st.subheader("Before and after, your run")
        rows_ba = job.snapshot()["info"].get("before_after", [])
        if rows_ba:
            cols = ["base (greedy)", "base (sampled)", "tuned (greedy)", "tuned (sampled)"]
            m = st.columns(4)
            for col, name in zip(m, cols):
                col.metric(name, f"{sft.accuracy(rows_ba, name):.0%} right")
            table = pd.DataFrame([{"family": r["family"], "prompt": r["prompt"], "expected": r["expected"],
                                   **{c: ("✓ " if r[c] == r["expected"] else "✗ ") + (r[c] or "(nothing)")
                                      for c in cols}} for r in rows_ba])
            st.dataframe(table, hide_index=True, width="stretch", key=f"{P}_before_after")
            ui.takeaway("The same validation prompts (three per family), in the same template, answered by the base "
                        "model and by your tuned one. Greedy takes the likeliest token each time; sampled draws at "
                        "temperature 0.8. ✓: exactly the expected answer. On so few prompts a percentage moves in "
                        "steps of 6 points; the curve above scores every validation prompt.")
        model, tuned_tok, info = ui.load_run(job.result)
        st.markdown(f"Saved as run `{info.path.name}` (stage **sft**, parent `{info.parent}`). "
                    "The RLHF and constitutional AI pages can start from it. The zip is a transformers folder: "
                    "`AutoModelForCausalLM.from_pretrained(folder)`, and `AutoTokenizer.from_pretrained(folder)` "
                    "brings the chat template with it:")
        question = next((e.prompt for e in examples if e.split == "test"), "Repeat: red kite")
        st.code(f"tok.apply_chat_template([{{'role': 'user', 'content': {question!r}}}],\n"
                "                        add_generation_prompt=True, tokenize=False)\n→ "
                + repr(tuned_tok.apply_chat_template([{"role": "user", "content": question}],
                                                     add_generation_prompt=True, tokenize=False)), language="python")
        a, b = st.columns([3, 2])
        own = a.text_input("Ask the tuned model", question, key=f"{P}_ask")
        if own.strip():
            a.text(f"Tuned, greedy: {sft.answer(model, tuned_tok, own)}")
        with b:
            ui.download_run(job.result, key=f"{P}_dl")

ui.real_scale(cfg)   # these settings as a command here, and as a TRL SFTTrainer script

# --- how much data is enough -----------------------------------------------------------------------
st.header("How much data is enough?")
st.markdown("The same tuning on the first *n* training rows of each family, for each *n*, scored on the same "
            "validation rows. The runs go one after another; each gets the steps of the run above, and at most its "
            f"share of the {limits.MAX_JOB_SECONDS:.0f} s a job may take.")
st.text_input("Examples per family at each point", key=f"{P}.sweep_sizes", help=hlp("sweep_sizes"))
cfg = ui.read_config(SFTConfig, P)


def sweep_submission() -> list[dict]:
    if tok is None:
        raise UserError("Fix the data first (see the message above).")
    sizes, rows = cfg.sizes(), list(examples)
    return [dict(key=cfg.key("sweep", data_key), label="data sweep", total_steps=cfg.steps * len(sizes),
                 max_seconds=limits.MAX_JOB_SECONDS, stage="sft",
                 task=Task(sft.sweep, cfg, {"examples": rows}))]


ui.controls(SWEEP, sweep_submission, label="Run")


def draw_sweep(snaps: list[dict]) -> None:
    s = snaps[0]
    ui.status_line(s)
    pts = [r for r in s["records"] if "n_train" in r]
    if not pts:
        return
    fig = go.Figure(go.Scatter(x=[r["n_train"] for r in pts], y=[r["eval_accuracy"] for r in pts],
                               name="all families", mode="lines+markers", line=dict(width=3, color="#1f77b4")))
    for f in sorted({k.split("/", 1)[1] for r in pts for k in r if k.startswith("eval_accuracy/")}):
        fig.add_trace(go.Scatter(x=[r["n_train"] for r in pts], y=[r.get(f"eval_accuracy/{f}") for r in pts],
                                 name=f, mode="lines+markers", line=dict(dash="dot")))
    fig.update_layout(title="Validation prompts answered exactly, against training examples per family", height=360,
                      xaxis=dict(title="training examples per family", type="log", tickvals=[r["n_train"] for r in pts]),
                      yaxis_title="exact match",
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    ui.plot(fig, key=f"{P}_sweep_chart",
            notice="More rows help most where the task has many forms to learn (copy, reverse); label and pattern "
                   "need few, and facts are capped by how many facts the world has (135 training questions). Each "
                   "point is one short run of this toy model, not a law for real SFT data sets (LIMA tuned a 65B "
                   "model on 1,000 examples, Zhou et al. 2023).")


ui.live(SWEEP, draw_sweep)
