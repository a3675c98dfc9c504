"""Attention: first, two heads of a real pretrained model (MiniLM) doing recognisable jobs on a sentence, and
an induction head forming (recorded, one click to train); then where each head looks, what one head
computes, what switching heads off costs, and the character-level models trained here."""
import dataclasses
import functools
import html
import math
from pathlib import Path

import numpy as np

# Imported before any job starts: plotly looks pandas up in sys.modules, and a job thread that is
# importing it (through codecarbon) meanwhile leaves it half-built there.
import pandas  # noqa: F401
import plotly.graph_objects as go
import streamlit as st
import torch

from app_pages import ui
from engine import demos
from engine.attention import heads as A
from engine.attention import induction
from engine.attention.bertviz_offline import head_view_html, model_view_html
from engine.attention.induction import InductionConfig
from engine.core import limits, minilm, runs
from engine.core.config import StageConfig, UserError, field
from engine.core.report import Task

P, I = "att", "ind"      # widget-key prefixes; I is also the job slot
DEMO = "induction-forms"  # engine/attention/induction.py registers it; `python -m engine demo induction-forms`
INDUCTION_DEFAULTS = {f.name: f.default for f in dataclasses.fields(InductionConfig)}   # the quick demo, seed 0
MINILM = "minilm"
CHAR_TEXT = "Tom has a black dog. Tom has a black dog."   # a character model's example: a repeat shows induction
BAKED = "pretrain-base-gpt"
MAX_TOKENS = 64          # every view reads at most this many tokens
MODEL_VIEW_TOKENS = 32   # the model view at most this many (bertviz_view_tokens may cut further)
VIEW_LINES = 32_000      # see bertviz_view_tokens
ARCHITECTURES = {"GPT2LMHeadModel": "GPT", "BertForMaskedLM": "BERT"}
SCORES = {"entropy": "Entropy (nats)", "previous_token": "Previous token", "first_token": "First token",
          "induction": "Induction"}
LEARNING_RATES = [3e-4, 1e-3, 2e-3, 3e-3, 1e-2]
TAB_NAMES = ("Views", "Heads", "Step by step", "Switch off", "Watch heads form")


@dataclasses.dataclass
class AttentionConfig(StageConfig):
    """What the attention views show: a link reopens the same model, text, head and query."""
    model: str = field(MINILM, "a run folder's name, or minilm (the real pretrained encoder, word pieces)")
    text: str = field("The astronaut's spacesuit glittered under the moonlight.", "text to read")
    view: str = field("head", "bertviz view", choices=("head", "model"))
    layer: int = field(0, "layer of the head shown", range=(0, 47))
    head: int = field(0, "head shown", range=(0, 63))
    tab: str = field(TAB_NAMES[0], "the open tab", choices=TAB_NAMES)
    query: int = field(5, "query position in the step-by-step view", range=(0, MAX_TOKENS - 1))
    temperature: float = field(1.0, "softmax temperature in the step-by-step view", range=(0.1, 5.0))


def _tick(token: str) -> str:
    # Plotly reads tick and hover text as a little HTML: "<b>" would turn bold, "<unk>" vanish.
    return html.escape(token)


# --- models ----------------------------------------------------------------------------------

def model_choices() -> dict[str, tuple[str, runs.RunInfo | None]]:
    """name -> (label, run): GPT- and BERT-style runs of this app (baked, and this session's),
    then the pretrained MiniLM."""
    out = {}
    for info in ui.my_runs():
        arch, layers, heads = runs.model_shape(info.path)
        if kind := ARCHITECTURES.get(arch):
            shape = f"{layers} layers × {heads} heads"
            origin = "baked default" if info.baked else "trained here"
            out[info.path.name] = (f"{kind} · {info.stage} · {shape} ({origin}: {info.name})", info)
    out[MINILM] = ("BERT · all-MiniLM-L6-v2 · 6 layers × 12 heads (pretrained, real)", None)
    return out


CHOICES = model_choices()


def load(name: str):
    """(model, tokenizer), cached for the whole process."""
    if name == MINILM:
        return minilm.load()
    model, tok, _ = ui.load_run(str(CHOICES[name][1].path))
    return model, tok


@st.cache_data(max_entries=16, show_spinner=False)
def analyse(name: str, text: str) -> tuple[A.Extraction, A.HeadScores]:
    model, tok = load(name)
    e = A.extract(model, tok, text, MAX_TOKENS)
    return e, A.HeadScores(**A.pattern_scores(e.attn), induction=induction_grid(name))


@st.cache_data(max_entries=16, show_spinner=False)
def induction_grid(name: str) -> np.ndarray:
    """Induction scores come from a random repeated sequence, not the text: once per model
    (MiniLM takes most of a second). A "watch heads form" run is scored on its own symbols."""
    run = CHOICES[name][1]
    if run and run.stage == "induction":
        return induction.score_heads(*load(name), run.config["vocab"], run.config["seq_len"] // 2)[0]
    return A.induction_scores(*load(name))


@st.cache_data(max_entries=8, show_spinner=False)
def view_html(name: str, text: str, view: str) -> tuple[str, int]:
    """bertviz's HTML and how many tokens it shows."""
    model, tok = load(name)
    e = A.extract(model, tok, text, bertviz_view_tokens(view, model.config))
    return (head_view_html if view == "head" else model_view_html)(e.attn, e.tokens), len(e.tokens)


def bertviz_view_tokens(view: str, config) -> int:
    """bertviz draws one SVG line per head and token pair: heads × T² for the head view's layer,
    layers × heads × T² for the model view. In headless Chromium on 2 cores, 16k lines appeared
    within 0.9 s of a new text, 38k within 1.7 s, 49k (MiniLM's head view at 64 tokens) only after
    2.3-3.2 s: fewer tokens keep each view under VIEW_LINES."""
    heads = config.num_attention_heads * (1 if view == "head" else config.num_hidden_layers)
    return min(MAX_TOKENS if view == "head" else MODEL_VIEW_TOKENS, math.isqrt(VIEW_LINES // heads))


def view_height(view: str, T: int, L: int, H: int) -> int:
    """The iframe's height from bertviz's own layout constants (head_view.js, model_view.js),
    capped: a taller view scrolls inside its frame."""
    if view == "head":
        return 120 + math.ceil(22.5 * T)
    thumbnail = T * 7 * 12 / H + 10
    return min(1500, 70 + math.ceil(max(L * thumbnail + 38, T * 18 + 55)))


# --- charts ----------------------------------------------------------------------------------

def pattern_figure(weights: np.ndarray, tokens: list[str], title: str, causal: bool, height: int = 520,
                   labels: bool = True) -> go.Figure:
    """A head's attention: row = query (the token looking), column = key (the token looked at).
    Cells a causal model may not look at are left blank, so the mask shows."""
    T = len(tokens)
    z = np.array(weights, dtype=float)
    if causal:
        z[np.triu_indices(T, 1)] = np.nan
    ticks = [_tick(t) for t in tokens]
    pairs = np.array([[[f"{i} {ticks[i]}", f"{j} {ticks[j]}"] for j in range(T)] for i in range(T)])
    fig = go.Figure(go.Heatmap(z=z, customdata=pairs, colorscale="Blues", zmin=0,
                               hovertemplate="query %{customdata[0]} → key %{customdata[1]}: "
                                             "%{z:.3f}<extra></extra>"))
    axis = dict(tickmode="array", tickvals=list(range(T)), ticktext=ticks, tickfont=dict(size=10 if T <= 48 else 8),
                constrain="domain", showticklabels=labels)
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis=dict(axis, title="key (looked at)", side="bottom"),
                      yaxis=dict(axis, title="query (looking)", autorange="reversed", scaleanchor="x"))
    return fig


def annotated_pattern(e: A.Extraction, head: A.Notable, causal: bool) -> go.Figure:
    """The head's pattern with an arrow at what to look for: the stripe below the diagonal (previous
    token), or the column at position 0 (where the head parks)."""
    T = len(e.tokens)
    fig = pattern_figure(e.attn[head.layer, head.head].numpy(), e.tokens, "", causal, height=340)
    fig.update_traces(showscale=False)   # the notice under it gives the numbers
    if head.kind == "previous_token":
        row = max(1, (T - 1) // 2)
        x, y, text = row - 1, row, "each token → the one before"
    else:
        row = max(1, T - 3)
        x, y, text = 0, row, f"everyone → {_tick(e.tokens[0])}"
    fig.add_annotation(x=x, y=y, text=text, showarrow=True, arrowhead=2, arrowcolor="#d62728", ax=70, ay=-55,
                       font=dict(size=12, color="#d62728"), bgcolor="rgba(255,255,255,0.9)")
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10), xaxis_title=None, yaxis_title=None)
    return fig


def grid_figure(grid: np.ndarray, title: str, selected: tuple[int, int]) -> go.Figure:
    L, H = grid.shape
    fig = go.Figure(go.Heatmap(z=grid, x=list(range(H)), y=list(range(L)), colorscale="Viridis",
                               texttemplate="%{z:.2f}" if H <= 8 else None, showscale=False, hoverinfo="skip"))
    # Plotly cannot select heatmap cells: an invisible marker on each cell takes the click.
    ls, hs = np.divmod(np.arange(L * H), H)
    hidden = dict(marker=dict(opacity=0))
    fig.add_trace(go.Scatter(x=hs, y=ls, mode="markers", customdata=grid.ravel(), selected=hidden, unselected=hidden,
                             marker=dict(symbol="square", size=28, opacity=0),
                             hovertemplate="layer %{y} head %{x}: %{customdata:.2f}<extra></extra>"))
    fig.add_shape(type="rect", x0=selected[1] - 0.5, x1=selected[1] + 0.5, y0=selected[0] - 0.5,
                  y1=selected[0] + 0.5, line=dict(color="red", width=2))
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=90 + 40 * L,
                      margin=dict(l=10, r=10, t=36, b=10),
                      xaxis=dict(title="head", dtick=1, range=[-0.5, H - 0.5]),
                      yaxis=dict(title="layer", dtick=1, range=[L - 0.5, -0.5]),
                      clickmode="event+select")
    return fig


def bars(values: np.ndarray, labels: list[str], title: str, key: str, notice: str, ytitle: str = "",
         xtitle: str = "position (hover for the token)") -> None:
    v = np.array(values, dtype=float)
    hidden = ~np.isfinite(v)   # −∞ from the mask: drawn as a marker, since a bar cannot be infinite
    fig = go.Figure(go.Bar(x=list(range(len(v))), y=np.where(hidden, np.nan, v), marker_color="#4a78c2",
                           customdata=[_tick(t) for t in labels],
                           hovertemplate="%{x} %{customdata}: %{y:.3f}<extra></extra>"))
    if hidden.any():
        fig.add_trace(go.Scatter(x=np.flatnonzero(hidden), y=[0] * int(hidden.sum()), mode="markers",
                                 marker=dict(symbol="x", color="gray"), hovertemplate="masked: −∞<extra></extra>"))
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=230, showlegend=False, yaxis_title=ytitle,
                      margin=dict(l=10, r=10, t=34, b=10),
                      xaxis=dict(tickmode="array", tickvals=list(range(len(v))), ticktext=[_tick(t) for t in labels],
                                 tickfont=dict(size=9)) if len(v) <= 32 else dict(title=xtitle))
    ui.plot(fig, notice=notice, key=key)


def induction_figure(records: list[dict], uniform: float, title: str, height: int = 330) -> go.Figure:
    """The best head's induction score (left axis) and the loss on each half (right axis) against the
    step, with the phase change marked."""
    ev = [r for r in records if "induction_score" in r]
    steps = [r["step"] for r in ev]
    fig = go.Figure([
        go.Scatter(x=steps, y=[r["induction_score"] for r in ev], name="induction score (best head)",
                   line=dict(color="#2ca02c", width=3)),
        go.Scatter(x=steps, y=[r["loss_repeat"] for r in ev], name="loss on the repeated half", yaxis="y2",
                   line=dict(color="#1f77b4")),
        go.Scatter(x=steps, y=[r["loss_first_half"] for r in ev], name="loss on the random half", yaxis="y2",
                   line=dict(color="#d62728", dash="dot")),
        go.Scatter(x=[steps[0], steps[-1]] if steps else [], y=[uniform, uniform], yaxis="y2", mode="lines",
                   name=f"ln V = {uniform:.2f}: a uniform guess", line=dict(color="gray", dash="dot", width=1))])
    if phase := induction.phase_change(records):
        fig.add_vline(x=phase["step"], line_dash="dash", line_color="#555",
                      annotation_text="phase change", annotation_position="top left")
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=height, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis=dict(title="training step"),
                      yaxis=dict(title="induction score", range=[0, 1], color="#2ca02c"),
                      yaxis2=dict(title="loss (nats per token)", overlaying="y", side="right", rangemode="tozero",
                                  showgrid=False),
                      legend=dict(orientation="h", yanchor="top", y=-0.3, font=dict(size=11)))
    return fig


def induction_notice(records: list[dict], uniform: float, vocab: int, recorded: bool) -> str:
    phase = induction.phase_change(records)
    if not phase:
        return ("The green line is the best head's induction score: near 0 until a head learns to look back at "
                "the token after the earlier copy, then a sudden rise. The random half's loss cannot beat "
                f"ln {vocab} = {uniform:.2f}, a uniform guess.")
    who = "In this recorded run" if recorded else "In your run"
    return (f"{who} the best head's induction score sat near {phase['start']:.2f} until step "
            f"{phase['plateau_until']}, then rose within a few hundred steps, past halfway at step {phase['step']}, "
            f"to {phase['end']:.2f}; meanwhile the loss on the repeated half fell to {phase['loss_repeat_end']:.2f} "
            f"nats, while the random half stays near ln {vocab} = {uniform:.2f}, a uniform guess. A phase change, "
            "as Olsson et al. (2022) saw in real models; the numbers are this 2-layer toy's.")


def _pick_head(chart_key: str) -> None:
    """on_select: clicking a cell of a score grid opens that head below."""
    points = st.session_state[chart_key].selection.get("points") or []
    if points:
        st.session_state[f"{P}.layer"] = int(points[0]["y"])
        st.session_state[f"{P}.head"] = int(points[0]["x"])


# --- the first screen: two heads doing recognisable jobs, and an induction head forming -------------

def first_look(e: A.Extraction) -> None:
    """The clearest previous-token head and the clearest parking head of this model on this text."""
    notable = A.notable_heads(e.attn, causal)
    first = e.tokens[0]
    model_name = "MiniLM" if name == MINILM else "this model"
    for col, (kind, h) in zip(st.columns(2), notable.items()):
        with col:
            if kind == "previous_token":
                st.markdown(f"**Layer {h.layer}, head {h.head} reads the token just before**")
                notice = (f"{h.score:.0%} of each token's attention goes to the token just before it: a stripe "
                          f"under the diagonal (spread evenly it would be about {h.uniform:.0%}). Heads like this "
                          "hand each token its neighbour; an induction head, which you can watch form on this page, "
                          "builds on one. Clark et al. "
                          "(2019) found such heads in BERT's early layers.")
            else:
                st.markdown(f"**Layer {h.layer}, head {h.head} parks on {ui.plain(first)}**")
                where = ("[CLS], the special token every text starts with" if first == "[CLS]"
                         else "the first token")
                notice = (f"{h.score:.0%} of the attention goes to {where} (spread evenly about {h.uniform:.0%}): "
                          "a column at the left edge. A head whose pattern finds nothing to match parks its "
                          "weight there, as a no-op: BERT does it on [CLS] and [SEP] (Clark et al. 2019), GPTs "
                          "on the first token (an attention sink, Xiao et al. 2023).")
            ui.plot(annotated_pattern(e, h, causal), notice=notice, key=f"{P}_first_{kind}")
    st.caption(f"Rows: the token looking (query); columns: the token looked at (key); each row sums to 1. Both are "
               f"real heads of {model_name}, chosen as the clearest of their kind on this text; the tabs below show "
               "all of them.")


def induction_panel() -> None:
    """The one click, then the recorded demo of an induction head forming, or this visitor's own run."""
    st.markdown("**Watch an induction head form**")
    quick = InductionConfig.PRESETS["quick demo"]
    ui.one_click("Watch an induction head form", I, I, INDUCTION_DEFAULTS,
                 key=f"{I}_watch",
                 help=f"Train a {quick['n_layer']}-layer GPT-2 now with the quick-demo settings, seed 0: "
                      f"{quick['steps']:,} steps, within 30 s. Your run replaces the recording below.")
    if ui.jobs_of(I):
        def draw(snaps: list[dict]) -> None:
            s = snaps[0]
            ui.status_line(s)
            if [r for r in s["records"] if "induction_score" in r]:
                v = s["info"].get("uniform_loss", 0.0)
                ui.plot(induction_figure(s["records"], v, "Your run"), key=f"{I}_panel_{s['id']}",
                        notice=induction_notice(s["records"], v, round(math.exp(v)), recorded=False))
        ui.live(I, draw)
        st.caption("Settings, the attention as it changes and a replay: the **Watch heads form** tab below.")
    elif demo := demos.load(DEMO):
        c, v = demo["stage_config"], demo["info"]["uniform_loss"]
        ui.plot(induction_figure(demo["records"], v, "Recorded: an induction head forms"),
                notice=induction_notice(demo["records"], v, c["vocab"], recorded=True), key=f"{I}_panel_demo")
        st.caption(f":material/history: **Recorded**, not live: a {c['n_layer']}-layer GPT-2 on random strings of "
                   f"{c['seq_len'] // 2} symbols (of {c['vocab']}) shown twice, {c['steps']:,} steps, seed {c['seed']} "
                   "(the quick-demo settings). The button trains it again.")
    else:
        st.info("An induction head completes patterns: having seen *A B*, at the next *A* it predicts *B*. "
                "Press the button to watch one form in a tiny GPT-2.", icon=":material/play_arrow:")


# --- tabs ----------------------------------------------------------------------------------------

def head_pickers() -> tuple[int, int]:
    """Layer and head; the same widgets (and so the same choice) in every tab that shows one head."""
    a, b = st.columns(2)
    a.selectbox("Layer", range(L), key=f"{P}.layer")
    b.selectbox("Head", range(H), key=f"{P}.head")
    return st.session_state[f"{P}.layer"], st.session_state[f"{P}.head"]


def views_tab() -> None:
    st.segmented_control("View", ("head", "model"), key=f"{P}.view", required=True,
                         format_func={"head": "Head view (one layer, all heads)",
                                      "model": "Model view (every layer and head)"}.get)
    page, shown = view_html(name, cfg.text, cfg.view)
    cut = f" It shows the first {shown} tokens: each head and token pair is a line to draw." \
        if shown < len(e.tokens) else ""
    st.caption("bertviz (Vig 2019). Hover a token to see where it looks; in the head view, pick a layer and "
               "double-click a colour to show one head." + cut)
    st.iframe(page, height=view_height(cfg.view, shown, L, H))


GRID_NOTICES = {
    "entropy": "Dark cells are focused heads (near 0 nats: one token gets all the weight); bright ones spread "
               "their weight, up to ln T for a uniform spread.",
    "previous_token": "Bright cells look at the token just before; 1.0 would be all of the weight.",
    "first_token": "Bright cells park their weight on position 0 ([CLS] in BERT, the first token in a GPT).",
    "induction": "Bright cells are induction heads: on a random sequence shown twice they look at the token "
                 "after the earlier copy. Models with one layer, or trained on too little, have none.",
}


def heads_tab() -> None:
    st.markdown(
        "Four scores per head, one grid each (rows: layers, columns: heads). **Click a cell** to open that "
        "head below. *Entropy*: low when the head looks at few tokens. *Previous token*: weight on the token just "
        "before. *First token*: weight on position 0, where heads park attention when they have nothing to do "
        "(an *attention sink*, Xiao et al. 2023). *Induction*: on a random sequence shown twice, weight on the "
        "token that followed the current token last time (Olsson et al. 2022).")
    for col, (attr, title) in zip(st.columns(4), SCORES.items()):
        with col:
            ui.plot(grid_figure(getattr(scores, attr), title, (cfg.layer, cfg.head)), notice=GRID_NOTICES[attr],
                    key=f"{P}_grid_{attr}", on_select=functools.partial(_pick_head, f"{P}_grid_{attr}"),
                    selection_mode="points")
    left, right = st.columns([3, 2])
    with right:
        layer, head = head_pickers()
        for attr, title in SCORES.items():
            st.markdown(f"{title}: **{getattr(scores, attr)[layer, head]:.2f}**")
        st.caption("Each row is one query token's weights over the keys, and sums to 1. A stripe just below the "
                   "diagonal is a previous-token head; a column at position 0 is an attention sink; on a repeated "
                   "text, a stripe parallel to the diagonal, one token past the earlier copy, is an induction head.")
    with left:
        ui.plot(pattern_figure(e.attn[layer, head].numpy(), e.tokens, f"Layer {layer}, head {head}", causal,
                               height=max(380, 200 + 11 * len(e.tokens))), key=f"{P}_pattern",
                notice=f"Each row sums to 1; spread evenly over the {len(e.tokens)} tokens a cell would hold about "
                       f"{1 / len(e.tokens):.2f}, so any darker cell is a token this head picks out.")


def step_tab() -> None:
    a, b, c = st.columns([1, 2, 2])
    with a:
        layer, head = head_pickers()
    b.selectbox("Query token", range(len(e.tokens)), key=f"{P}.query", format_func=lambda i: f"{i}: {e.tokens[i]}")
    c.slider("Softmax temperature", 0.1, 5.0, step=0.1, key=f"{P}.temperature",
             help="Scores are divided by it before the softmax: below 1 sharpens the weights, above 1 flattens them.")
    q, temp = st.session_state[f"{P}.query"], st.session_state[f"{P}.temperature"]
    step = A.attention_step(model, e.ids, layer, head, q, temp)
    d = len(step.query)
    st.markdown(f"Layer {layer}, head {head}, query {q} (**{ui.plain(e.tokens[q])}**). The head projects every token "
                f"into a query, a key and a value of {d} numbers each.")
    r1, r2 = st.columns(3), st.columns(3)
    top = int(np.nanargmax(np.where(np.isfinite(step.masked), step.masked, np.nan)))
    with r1[0]:
        bars(step.scores, e.tokens, "1. score = q · k for each key", f"{P}_s1",
             f"A high score means this key matches what the query looks for: here {ui.plain(e.tokens[top])}.")
    with r1[1]:
        bars(step.scaled, e.tokens, f"2. divided by √d = {step.scale:.1f}", f"{P}_s2",
             f"The same shape, {step.scale:.1f} times smaller, so the softmax does not saturate.")
    with r1[2]:
        bars(step.masked, e.tokens, "3. causal mask: later keys → −∞" if causal else "3. no mask (bidirectional)",
             f"{P}_s3", "Later tokens become −∞ (crosses): this token cannot see the future." if causal else
             "Nothing is masked: a BERT-style token sees the whole text, both ways.")
    with r2[0]:
        bars(step.weights, e.tokens, f"4. softmax(scores / {temp:g}) = weights", f"{P}_s4",
             f"The weights sum to 1 (even would be {1 / (q + 1 if causal else len(e.tokens)):.2f} each); raise the "
             "temperature and they flatten.", "weight")
    with r2[1]:
        fig = go.Figure(go.Heatmap(z=step.weights[:, None] * step.values, colorscale="RdBu", zmid=0,
                                   hovertemplate="key %{y}, dim %{x}: %{z:.3f}<extra></extra>"))
        fig.update_layout(title=dict(text="5. weight × value, per key (rows)", font=dict(size=13)), height=230,
                          margin=dict(l=10, r=10, t=34, b=10), xaxis_title="dimension",
                          yaxis=dict(autorange="reversed", title="key"))
        ui.plot(fig, key=f"{P}_s5", notice="Keys with little weight fade to white: only the picked keys' values "
                                           "pass on.")
    with r2[2]:
        bars(step.output, [str(i) for i in range(d)], "6. output = sum of the rows of 5", f"{P}_s6",
             f"These {d} numbers are what this head adds for this token.", xtitle="dimension")
    st.caption("Scaling by √d keeps the scores' spread near 1 whatever the head size, so the softmax does not "
               "saturate (Vaswani et al. 2017, section 3.2.1). At temperature 1 these weights are exactly the "
               f"model's own (row {q} of the head's pattern).")


def ablation_tab() -> None:
    heads = [(l, h) for l in range(L) for h in range(H)]
    if f"{P}_ablate" in st.session_state:   # heads picked on a model with more of them
        st.session_state[f"{P}_ablate"] = [p for p in st.session_state[f"{P}_ablate"] if p in heads]
    chosen = st.multiselect("Heads to switch off", heads, key=f"{P}_ablate",
                            format_func=lambda p: f"layer {p[0]} head {p[1]}",
                            help="A switched-off head passes on zeros instead of its weighted values.")
    try:
        if not chosen:
            raise UserError("Choose one or more heads to see what the model loses without them.")
        r = A.ablate(model, tok, cfg.text, chosen, MAX_TOKENS)
        m = st.columns(3)
        if r.metric == "loss":
            m[0].metric("loss with every head", f"{r.before:.3f}")
            m[1].metric("loss without them", f"{r.after:.3f}", f"{r.change:+.3f}", delta_color="inverse")
            m[2].caption("Loss on this text: " + ("predicting every next token." if causal else
                                                    "predicting every 7th token, masked."))
        else:
            m[0].metric("embedding moved by", f"{r.after:.4f}", help="cosine distance")
            m[1].caption("MiniLM has no language-model head, so there is no loss: this is how far switching the heads "
                         "off moves the sentence embedding (mean of the last layer), as cosine distance.")
    except UserError as err:
        st.caption(str(err))
    each_key = f"_{P}_each"
    if st.button("Switch off each head in turn", key=f"{P}_each_btn", icon=":material/grid_on:"):
        with st.spinner(f"Measuring {L * H} heads…"):
            grid = np.array([[A.ablate(model, tok, cfg.text, [(l, h)], MAX_TOKENS).change for h in range(H)]
                             for l in range(L)])
        st.session_state[each_key] = (name, cfg.text, grid)
    if (saved := st.session_state.get(each_key)) and saved[:2] == (name, cfg.text):
        worst = np.unravel_index(int(np.argmax(saved[2])), saved[2].shape)
        ui.plot(grid_figure(saved[2], "Change when only this head is off", (cfg.layer, cfg.head)),
                key=f"{P}_each_grid", width="content",
                notice=f"Layer {worst[0]}, head {worst[1]} costs the most on this text ({saved[2].max():+.3f}); "
                       "most heads cost little alone, as others carry the same information.")


def watch_tab(open: bool) -> None:
    """Always run, for its Train controls (they start what the one click asked for); the charts only when
    the tab is open, so a run watched from the panel at the top is not slowed by drawing them unseen."""
    st.markdown(
        "An **induction head** completes patterns: having seen *A B* earlier, at the next *A* it looks at *B* and "
        "predicts it. Here a fresh GPT-2 trains on random symbols whose second half repeats the first. The first "
        "half cannot be learned: its loss stays near ln V, a uniform guess (a little above it once the model "
        "copies, as copying is wrong there). The repeat can, but only once one head marks each token's "
        "predecessor (a *previous-token head*) and a head in a later layer uses that mark to find the earlier "
        "copy. For a while nothing happens; then the loss on the repeat drops suddenly as the induction score "
        "jumps. Olsson et al. (2022) saw the same phase change, as a bump in the training loss, in their models "
        "of two or more layers, and not in one-layer models: try 1 layer.")
    with st.container(border=True):
        ui.preset_picker(InductionConfig, I)
        a, b = st.columns(2)
        a.slider("Layers", 1, 4, key=f"{I}.n_layer", help=ui.widget_help(InductionConfig, "n_layer"))
        b.select_slider("Steps", sorted({100, 250, 500, 1000, 1500, 2000, 3000, 5000, st.session_state[f"{I}.steps"]}),
                        key=f"{I}.steps", help=ui.widget_help(InductionConfig, "steps"))
        with ui.advanced():
            a, b, c, d = st.columns(4)
            a.slider("Heads per layer", 1, 8, key=f"{I}.n_head")
            b.select_slider("Learning rate", sorted({*LEARNING_RATES, st.session_state[f"{I}.lr"]}), key=f"{I}.lr",
                            format_func=lambda v: f"{v:g}")
            c.select_slider("Sequence length", sorted({16, 24, 32, 48, 64, st.session_state[f"{I}.seq_len"]}),
                            key=f"{I}.seq_len", help=ui.widget_help(InductionConfig, "seq_len"))
            d.slider("Symbols (V)", 8, len(induction.ALPHABET), key=f"{I}.vocab",
                     help=ui.widget_help(InductionConfig, "vocab"))
            a.number_input("Evaluate every (steps)", 1, 1000, key=f"{I}.eval_every",
                           help=ui.widget_help(InductionConfig, "eval_every"))
            b.number_input("Seed", 0, 2**31 - 1, key=f"{I}.seed", help=ui.widget_help(InductionConfig, "seed"))
            c.number_input("Time limit (s)", 5, int(limits.MAX_JOB_SECONDS), step=5, key=f"{I}.max_seconds")
    jobs = ui.controls(I, submissions)
    if not open:
        return
    ui.live(I, draw_training, downloads=False)   # the panel at the top is the slot's main view (ui.live)
    for job in jobs:
        if not job.active:
            replay(job)


def submissions() -> list[dict]:
    run_cfg = ui.read_config(InductionConfig, I)
    run_cfg.check()
    owner = ui.visitor_id()
    return [dict(key=run_cfg.key(), label="Induction run", total_steps=run_cfg.steps, stage="attention",
                 max_seconds=run_cfg.max_seconds, task=Task(induction.run, run_cfg, {"owner": owner}))]


def draw_training(snaps: list[dict]) -> None:
    for s in snaps:
        ui.status_line(s)
        tr = [r for r in s["records"] if "loss" in r]
        ev = [r for r in s["records"] if "induction_score" in r]
        if not ev:
            continue
        steps = [r["step"] for r in ev]
        v = s["info"]["uniform_loss"]
        a, b, c = st.columns([3, 3, 2])
        with a:
            ui.curve_chart([dict(name="training (all)", x=[r["step"] for r in tr], y=ui.smooth([r["loss"] for r in tr]),
                                 color="#bbbbbb"),
                            dict(name="random first half", x=steps, y=[r["loss_first_half"] for r in ev],
                                 color="#d62728"),
                            dict(name="repeated half", x=steps, y=[r["loss_repeat"] for r in ev], color="#1f77b4")],
                           "Loss (nats per token)", hlines=[(v, "ln V: a uniform guess")],
                           key=f"{I}_loss_{s['id']}", height=320, ytitle="training loss",
                           notice=f"The random half cannot beat ln V = {v:.2f}, a uniform guess; the repeated half "
                                  "falls towards 0 only once an induction head has formed.")
        with b:
            ui.curve_chart([dict(name="best induction head", x=steps, y=[r["induction_score"] for r in ev],
                                 color="#2ca02c"),
                            dict(name="best previous-token head", x=steps, y=[r["previous_token_score"] for r in ev],
                                 color="#9467bd")],
                           "Best head's score", ytitle="score (1 = all the weight)", key=f"{I}_score_{s['id']}",
                           height=320,
                           notice="The previous-token head comes first; the induction head, which reads its "
                                  "output, follows with a jump.")
        with c:
            last = s["samples"][-1]
            lh = np.unravel_index(np.argmax(last["induction"]), last["induction"].shape)
            ui.plot(pattern_figure(last["attn"][lh].astype(float), s["info"]["example"],
                                   f"step {last['step']}: layer {lh[0]}, head {lh[1]}", True, height=320, labels=False),
                    key=f"{I}_live_{s['id']}",
                    notice="Once formed: a stripe parallel to the diagonal in the lower half, from each repeated "
                           "token to the one after its first copy.")


def replay(job) -> None:
    """After a run: a slider over the saved checkpoints replays how one head's pattern changed."""
    snap = job.snapshot()
    samples = snap["samples"]
    if not samples:
        return
    st.subheader("Replay: how the pattern changed")
    final = samples[-1]["induction"]
    best = tuple(int(i) for i in np.unravel_index(np.argmax(final), final.shape))
    heads = [(l, h) for l in range(final.shape[0]) for h in range(final.shape[1])]
    a, b = st.columns([3, 1])
    at_step = a.select_slider("Checkpoint (training step)", [s["step"] for s in samples],
                              value=samples[-1]["step"], key=f"{I}_replay_{job.id}")
    lh = b.selectbox("Head", heads, index=heads.index(best), key=f"{I}_replay_head_{job.id}",
                     format_func=lambda p: f"layer {p[0]} head {p[1]}" + (" (best)" if p == best else ""))
    sample = next(s for s in samples if s["step"] == at_step)
    record = next(r for r in snap["records"] if r.get("step") == at_step and "induction_score" in r)
    c, d = st.columns([3, 2])
    half = snap["info"]["half"]
    with c:
        ui.plot(pattern_figure(sample["attn"][lh].astype(float), snap["info"]["example"],
                               f"Step {at_step}: layer {lh[0]}, head {lh[1]}", True,
                               height=200 + 12 * len(snap["info"]["example"])),
                key=f"{I}_replay_fig_{job.id}",
                notice=f"An induction head's pattern is a stripe parallel to the diagonal, {half - 1} places left "
                       "of it (half-length − 1): from each repeated token to the token after its first copy. Slide "
                       "back to before the phase change and the stripe is not there.")
    with d:
        m = st.columns(2)
        m[0].metric("loss on the repeat", f"{record['loss_repeat']:.3f}")
        m[1].metric("best induction score", f"{record['induction_score']:.2f}")
        ui.plot(grid_figure(sample["induction"], f"Induction score per head at step {at_step}", lh),
                key=f"{I}_replay_grid_{job.id}",
                notice="Usually one head in the last layer lights up; the rest stay near 0.")
        ui.plot(grid_figure(sample["previous_token"], f"Previous-token score at step {at_step}", lh),
                key=f"{I}_replay_prev_{job.id}",
                notice="Its partner, a previous-token head, sits in an earlier layer: the stripe just below the "
                       "diagonal.")
    if job.result and Path(job.result).name in CHOICES:   # a replayed run saved by another session is theirs
        st.caption(f"Saved as `{Path(job.result).name}`: pick it in the model list at the top of the page to "
                   "look at its heads with your own text, e.g. *qwertyqwerty*.")


def use_model(model_name: str, text: str) -> None:
    """on_click: switch between the real word-piece model and a character-level one trained here."""
    st.session_state[f"{P}.model"] = model_name
    st.session_state[f"{P}.text"] = text


# --- page ------------------------------------------------------------------------------------------

torch.set_num_threads(1)   # per thread; with other jobs on the cores, 2 threads ran many times slower
ui.init_config(AttentionConfig, P)
ui.init_config(InductionConfig, I)

st.title("Attention")
st.markdown(
    "In every layer of a transformer, **attention heads** decide which other words each word reads. Below, two "
    "heads of a real pretrained model doing jobs you can see, and an induction head forming in a tiny one.")

if st.session_state[f"{P}.model"] not in CHOICES:
    missing = st.session_state[f"{P}.model"]
    st.session_state[f"{P}.model"] = MINILM
    st.info(f"The run {ui.plain(missing)} is not available here (runs trained in other sessions are private): "
            "showing the default model instead.", icon=":material/info:")
name = st.session_state[f"{P}.model"]
with st.spinner("Loading the model…"):
    model, tok = load(name)
causal = A.model_kind(model) == "causal"
L, H = model.config.num_hidden_layers, model.config.num_attention_heads
for key, n in (("layer", L), ("head", H)):
    if st.session_state[f"{P}.{key}"] >= n:   # the previous model had more
        st.session_state[f"{P}.{key}"] = 0

try:
    e, scores = analyse(name, st.session_state[f"{P}.text"])
except UserError as err:
    e = scores = None
    problem = str(err)
if e:
    st.session_state[f"{P}.query"] = min(st.session_state[f"{P}.query"], len(e.tokens) - 1)

look, panel = st.columns([2, 1], gap="medium")   # the panel is filled last (see the end)
with look:
    if e:
        first_look(e)
    else:
        st.warning(problem, icon=":material/edit_note:")
# The settings come after the payoff, also on a phone (where the columns above stack).
c1, c2 = st.columns([2, 3])
c1.selectbox("Model", list(CHOICES), key=f"{P}.model", format_func=lambda n: CHOICES[n][0],
             help="MiniLM reads word pieces (a word the vocabulary lacks is split, e.g. spaces + uit). The "
                  "GPT and BERT models trained on this app's pages read single characters; yours appear here too.")
c2.text_area("Text", key=f"{P}.text", height=90, max_chars=2000,
             help=f"The views read the first {MAX_TOKENS} tokens; bertviz's model view at most the first "
                  f"{MODEL_VIEW_TOKENS}.")
if name == MINILM and BAKED in CHOICES:
    st.button("Switch to characters: the GPT trained on the Pretraining page", key=f"{P}_to_chars",
              icon=":material/text_fields:", on_click=use_model, args=(BAKED, CHAR_TEXT),
              help="The baked base GPT of the Pretraining page: one character per token, and a causal mask.")
elif name != MINILM:
    st.button("Back to words: the pretrained MiniLM", key=f"{P}_to_words", icon=":material/translate:",
              on_click=use_model, args=(MINILM, AttentionConfig.text),
              help="The real pretrained encoder, all-MiniLM-L6-v2, reading word pieces.")
if e:
    for notice in e.notices:
        st.info(ui.plain(notice), icon=":material/info:")

cfg: AttentionConfig = ui.read_config(AttentionConfig, P)
ind_cfg: InductionConfig = ui.read_config(InductionConfig, I)

st.markdown(
    "**How a head works.** Each token (the *query*) scores every token it may see (the *keys*) by a dot product, "
    "turns the scores into weights with a softmax, and takes the weighted average of their *values*. Each head "
    "learns its own scoring, so different heads pick out different things.")
if causal:
    st.caption("**GPT-style (causal)**: a token may look only at itself and the tokens before it. Before the "
               "softmax, the scores of later tokens are set to −∞ (the causal mask), so their weights are 0: the "
               "upper-right triangle of every pattern is empty. That is what lets a GPT be trained on every next "
               "token at once and then write text left to right.")
else:
    st.caption("**BERT-style (bidirectional)**: no causal mask, so every token looks both ways, at the whole text. "
               "That is why BERT is trained to fill in masked tokens rather than to write the next one. "
               "[CLS] and [SEP] are the special tokens it always sees first and last.")

# Only the open tab runs and is drawn: the views alone then render well within 2 s of a new text
# (with every section drawn at once, the browser took twice as long). The induction tab always runs:
# its Train controls start a run the panel at the top asked for in one click.
tabs = st.tabs(TAB_NAMES, key=f"{P}.tab", on_change="rerun")
for tab, draw in zip(tabs, (views_tab, heads_tab, step_tab, ablation_tab)):
    if tab.open and e:   # the text's problem is shown above
        with tab:
            draw()
with tabs[-1]:
    watch_tab(bool(tabs[-1].open))
with panel:   # drawn last, so a run the one click asked for has started (in the tab's controls)
    induction_panel()
