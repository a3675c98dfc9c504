"""Pretraining: a tiny GPT learns to write. First the model that ships with the app (its curve, its
text before and after training), then one Train button: next token (GPT), masked token (BERT), or both."""


import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_pages import ui
from engine import pretraining as pretrain
from engine.core import limits, runs, textio
from engine.core.config import UserError
from engine.core.models import SIZES, build_model, count_params
from engine.core.report import Task
from engine.core.sampling import fill_masks, generate, next_token_probs
from engine.pretraining import PretrainConfig
from engine.text import corpus

P = "pt"  # widget-key prefix and job slot of this page
ui.init_config(PretrainConfig, P)
ui.fit_widgets(PretrainConfig, P)
hlp = lambda name: ui.widget_help(PretrainConfig, name)  # noqa: E731

BAKED = "pretrain-base-gpt"
PROMPT = "One morning, "
# Scale anchors for a character-level loss (nats per character). Python's docs: the baked model's recipe
# (engine/bake.py's BASE_GPT: 200k, 2,500 steps, lr 2e-3) with corpus=python-docs, seed 0: validation loss
# 1.358 (`python -m engine pretrain --corpus python-docs --steps 2500 --lr 0.002 --warmup 100 --eval-every 250
# --max-seconds 3600`). With the quick demo's 600 steps it ended at 1.889.
PYDOCS_LOSS = 1.36
NANOGPT = ("nanoGPT's 6-layer character model (context 256, width 384) reaches 1.47 on Shakespeare "
           "(the best validation loss in nanoGPT's README)")
CORPORA = {"world": "Built-in stories (templated English)", "python-docs": "Python's documentation (real prose)",
           "upload": "Upload a text file", "hub": "Hugging Face dataset (needs internet)"}


def _one_line(t: str) -> str:
    """Generated text, escaped, its line breaks shown as ⏎ so a sample reads as one line."""
    return ui.plain(t).replace("\n", " ⏎ ")


def _bold(t: str) -> str:
    """Markdown bold only holds when ** touches text: keep the prompt's edge spaces outside it."""
    core = t.strip()
    return t[:len(t) - len(t.lstrip())] + (f"**{_one_line(core)}**" if core else "") + t[len(t.rstrip()):]


@st.cache_data(show_spinner="Writing with the model before and after training…")
def before_after(path: str, prompt: str) -> dict:
    """The same prompt continued by the shipped model and by the same model at its random start (the
    same shape, seed and sampling): what 2,500 steps of next-token prediction bought."""
    model, tok, info = ui.load_run(path)
    c = info.config
    untrained = build_model("clm", len(tok), c["n_layer"], c["n_head"], c["n_embd"], c["block_size"], c["seed"],
                            tok.pad_token_id, tok.eos_token_id, arch=c.get("arch", "gpt2")).eval()
    return {"before": generate(untrained, tok, prompt, 160, 0.8, seed=0),
            "after": generate(model, tok, prompt, 160, 0.8, seed=0), "vocab": len(tok)}


def baked_path() -> str | None:
    try:
        return str(runs.find_run(BAKED, "pretrain"))
    except UserError:
        return None


st.title("Pretraining")
st.markdown("**A tiny GPT learns to write** by predicting the next character of simple stories. Below: the "
            "model that ships with the app, its loss, and its text before and after training. Then train your own.")

# --- the payoff: the shipped model, before and after; this visitor's run takes the chart's place -------------
shipped = baked_path()
shipped_info = runs.read_info(shipped) if shipped else None
left, right = st.columns([3, 2], gap="medium")
chart_area = left.container()   # filled below, once the controls have started any jobs


def shipped_chart() -> None:
    metrics = runs.read_metrics(shipped)
    tr = [r for r in metrics if "loss" in r]
    ev = [r for r in metrics if "eval_loss" in r]
    uniform, vocab = shipped_info.summary["uniform_loss"], shipped_info.summary["vocab_size"]
    ui.curve_chart(
        [dict(name=ui.label("loss"), x=[r["step"] for r in tr], y=ui.smooth([r["loss"] for r in tr]),
              color="#1f77b4"),
         dict(name=ui.label("eval_loss"), x=[r["step"] for r in ev], y=[r["eval_loss"] for r in ev],
              color="#1f77b4", dash="dash", markers=True)],
        "The shipped model learning", ytitle="loss (nats per character)", height=250,
        key=f"{P}_baked_curve",
        hlines=[(uniform, f"ln {vocab} = {uniform:.2f}: a uniform guess")],
        notice=f"Validation loss falls from {ev[0]['eval_loss']:.2f}, a uniform guess over {vocab} characters, to "
               f"{ev[-1]['eval_loss']:.2f} (perplexity {ev[-1]['eval_perplexity']:.2f}). That low figure is the toy's: "
               "the built-in stories are templated sentences a tiny model can nearly memorise. On real prose the same "
               f"model and steps end at {PYDOCS_LOSS:.2f} (Python's documentation, measured here); {NANOGPT}.")


if shipped:
    with right:
        with st.spinner("Writing…"):
            ba = before_after(shipped, PROMPT)
        with st.container(border=True):
            st.markdown("**Before training** (random weights)")
            st.markdown(f"> {_bold(PROMPT)}{_one_line(ba['before'][:90])}")
        with st.container(border=True):
            st.markdown(f"**After {shipped_info.summary['steps']:,} steps** "
                        f"({shipped_info.summary['seconds']:.0f} s on one CPU core)")
            st.markdown(f"> {_bold(PROMPT)}{_one_line(ba['after'][:130])}")
        st.caption("Same prompt and sampling (temperature 0.8, seed 0). Nobody taught it words or full stops: they "
                   "came from predicting the next character.")

# Widget values are in the session before the widgets are drawn: the config is read here, so Train sits
# right beside the preset, above the settings (on a phone it is reachable without scrolling past them).
cfg: PretrainConfig = ui.read_config(PretrainConfig, P)


def submissions() -> list[dict]:
    upload = st.session_state.get(f"_{P}_text", (None, None))[1] if cfg.corpus == "upload" else None
    text = pretrain.load_text(cfg, upload)   # raises UserError with the reason (empty, offline, ...)
    data = pretrain.prepare(cfg, text)         # tokenizes once; too-short text is refused here
    owner = ui.visitor_id()
    return [dict(key=one.key(data.text_digest),
                 label={"clm": "GPT (next token)", "mlm": "BERT (masked token)"}[one.objective],
                 total_steps=one.steps, max_seconds=one.max_seconds, stage="pretrain",
                 task=Task(pretrain.run, one, {"upload": text, "owner": owner}))
            for one in cfg.objectives()]


with st.container(border=True):
    ui.preset_picker(PretrainConfig, P)
    jobs = ui.controls(P, submissions)
    c1, c2, c3 = st.columns(3)
    with c1:
        st.radio("Objective", ("clm", "mlm", "both"), key=f"{P}.objective", horizontal=True, help=hlp("objective"),
                 format_func={"clm": "Next token (GPT)", "mlm": "Masked token (BERT)", "both": "Both"}.get)
        st.caption("GPT writes left to right; BERT fills in blanks. *Both* trains them side by side.")
    with c2:
        st.segmented_control("Size", (*SIZES, "custom"), key=f"{P}.size",
                             help="parameters in the layers: bigger learns more per step, and each step is slower")
        if st.session_state[f"{P}.size"] == "custom":
            a, b, c = st.columns(3)
            a.number_input("Layers", *ui.bounds(PretrainConfig, "n_layer"), key=f"{P}.n_layer")
            b.number_input("Heads", *ui.bounds(PretrainConfig, "n_head"), key=f"{P}.n_head")
            c.number_input("Width", *ui.bounds(PretrainConfig, "n_embd"), key=f"{P}.n_embd", step=8)
    with c3:
        st.selectbox("Corpus", corpus.SOURCES, key=f"{P}.corpus", format_func=CORPORA.get,
                     help=hlp("corpus") + ". The stories are easy (templated); Python's docs are real prose: "
                                          "the same model ends with a higher loss on them.")
        if st.session_state[f"{P}.corpus"] == "upload":
            up = st.file_uploader("UTF-8 text file", type=["txt", "md"], key=f"{P}_upload",
                                  max_upload_size=limits.MAX_UPLOAD_MB)
            if up is not None:
                try:
                    st.session_state[f"_{P}_text"] = (up.name, textio.read_text(up.getvalue(), up.name))
                except UserError as e:
                    st.session_state.pop(f"_{P}_text", None)
                    st.error(str(e))
            if f"_{P}_text" in st.session_state:
                name, text = st.session_state[f"_{P}_text"]
                st.caption(f"Using {name}: {len(text):,} characters.")
        elif st.session_state[f"{P}.corpus"] == "hub":
            st.text_input("Dataset name", key=f"{P}.hub_name", placeholder="roneneldan/TinyStories")
    with ui.advanced():
        a, b, c = st.columns(3)
        a.number_input("Steps", *ui.bounds(PretrainConfig, "steps"), key=f"{P}.steps", step=100, help=hlp("steps"))
        b.select_slider("Learning rate", ui.options(PretrainConfig, "lr"), key=f"{P}.lr",
                        format_func=lambda v: f"{v:g}", help=hlp("lr"))
        c.select_slider("Context (tokens)", ui.options(PretrainConfig, "block_size"), key=f"{P}.block_size",
                        help=hlp("block_size"))
        a.number_input("Batch size", *ui.bounds(PretrainConfig, "batch_size"), key=f"{P}.batch_size",
                       help=hlp("batch_size"))
        b.number_input("Warmup steps", *ui.bounds(PretrainConfig, "warmup"), key=f"{P}.warmup", step=10,
                       help=hlp("warmup"))
        c.number_input("Seed", *ui.bounds(PretrainConfig, "seed"), key=f"{P}.seed", help=hlp("seed"))
        a.number_input("Time limit (s)", *ui.bounds(PretrainConfig, "max_seconds"), key=f"{P}.max_seconds", step=5,
                       help=hlp("max_seconds"))
        b.number_input("Evaluate every (steps)", *ui.bounds(PretrainConfig, "eval_every"), key=f"{P}.eval_every",
                       help=hlp("eval_every"))
        c.number_input("Write a sample every (steps)", *ui.bounds(PretrainConfig, "sample_every"),
                       key=f"{P}.sample_every", help=hlp("sample_every"))
        a.radio("Tokenizer", ("char", "bpe"), key=f"{P}.tokenizer", horizontal=True, help=hlp("tokenizer"),
                format_func={"char": "Characters", "bpe": "Byte-level BPE"}.get)
        if st.session_state[f"{P}.tokenizer"] == "bpe":
            b.slider("BPE vocabulary size", *ui.bounds(PretrainConfig, "vocab_size"), key=f"{P}.vocab_size", step=4)
        c.toggle("bf16 autocast", key=f"{P}.bf16", help=hlp("bf16"))
        st.caption("Warmup then cosine decay to a tenth of the learning rate over the steps; AdamW; gradients "
                   "clipped at 1.0. Same seed and settings give the same curve when the steps finish within the "
                   "time limit. **bf16 autocast** does the matrix products in bfloat16, which changes the "
                   "arithmetic: the losses differ slightly from fp32 (final validation loss 1.739 against 1.738 when "
                   "the Carbon page's experiment was measured, bench/RESULTS.md), and it is faster only on CPUs "
                   "with bf16 instructions.")
    L, H, D = cfg.shape()
    st.caption(f"{L} layers × {H} heads × width {D}, context {cfg.block_size}: about "
               f"{count_params(L, D, 0, 0):,} parameters in the layers; {cfg.steps:,} steps at learning rate "
               f"{cfg.lr:g}.")

COLORS = {"GPT (next token)": "#1f77b4", "BERT (masked token)": "#d62728"}


def curve_notice(snaps: list[dict]) -> str:
    """What to notice in the live chart, with its anchors, for the corpus trained on."""
    text = ("Both curves start near ln V, a uniform guess, and fall as the model learns; the dashed validation "
            "curve is scored on the last 10% of the text, which the model never trains on.")
    if cfg.corpus == "world" and cfg.tokenizer == "char":
        text += (" A loss this low is the toy's: the built-in stories are templated, so a tiny model can nearly "
                 f"memorise them; on Python's documentation (real prose) the shipped recipe ends at {PYDOCS_LOSS:.2f}, "
                 f"and {NANOGPT}.")
    elif cfg.tokenizer == "char":
        text += f" For real prose at character level: {NANOGPT}."
    else:
        text += " With BPE each token is a few characters, so a loss per token is higher than per character."
    if len(snaps) == 2:
        text += (" The two losses measure different tasks: GPT predicts every next token from the left only; "
                 "BERT predicts 15% of tokens from both sides. Compare each curve with its own start, not the other.")
    return text


def draw(snaps: list[dict]) -> None:
    for s in snaps:
        ui.status_line(s)
    series, refs = [], set()
    for s in snaps:
        tr = [r for r in s["records"] if "loss" in r]
        ev = [r for r in s["records"] if "eval_loss" in r]
        color = COLORS.get(s["label"])
        if tr:
            series.append(dict(name=f"{s['label']}: {ui.label('loss')}", x=[r["step"] for r in tr],
                               y=ui.smooth([r["loss"] for r in tr]), color=color))
        if ev:
            series.append(dict(name=f"{s['label']}: {ui.label('eval_loss')}", x=[r["step"] for r in ev],
                               y=[r["eval_loss"] for r in ev], dash="dash", color=color, markers=True))
        if "uniform_loss" in s["info"]:
            refs.add((s["info"]["uniform_loss"], f"ln(V) = {s['info']['uniform_loss']:.2f}: a uniform guess"))
        if shipped and s["info"].get("objective") == "clm" and cfg.corpus == "world" and cfg.tokenizer == "char":
            refs.add((shipped_info.summary["eval_loss"],
                      f"the shipped model after {shipped_info.summary['steps']:,} steps"))
    if series:
        unit = "nats per character" if cfg.tokenizer == "char" else "nats per token"
        ui.curve_chart(series, f"Loss ({unit})", hlines=sorted(refs), key=f"{P}_curve", notice=curve_notice(snaps))
    cols = st.columns(max(1, len(snaps)))
    for col, s in zip(cols, snaps):
        tr = [r for r in s["records"] if "loss" in r]
        ev = [r for r in s["records"] if "eval_loss" in r]
        with col:
            st.markdown(f"**{s['label']}**" + (f" · {s['info']['params']:,} parameters, vocabulary "
                                                f"{s['info']['vocab_size']}" if s["info"] else ""))
            m = st.columns(3)
            m[0].metric(ui.label("loss"), f"{ui.smooth([r['loss'] for r in tr])[-1]:.3f}" if tr else "–",
                        help=ui.metric_help("loss", "Smoothed over the last steps."))
            m[1].metric(ui.label("eval_loss"), f"{ev[-1]['eval_loss']:.3f}" if ev else "–",
                        help=ui.metric_help("eval_loss", "On the last 10% of the text, never trained on."))
            m[2].metric(ui.label("eval_perplexity"), f"{ev[-1]['eval_perplexity']:.2f}" if ev else "–",
                        help=ui.metric_help("eval_perplexity", "exp(validation loss). For BERT it is over masked "
                                                               "tokens only, so it is not comparable with GPT's."))
            if tr:
                st.caption(f"{sum(r['tokens_per_sec'] for r in tr[-20:]) / len(tr[-20:]):,.0f} tokens/s · learning "
                           f"rate {tr[-1]['lr']:.1e} (warmup, then cosine decay)")
            for sm in reversed(s["samples"][-2:]):
                if "prompt" in sm:
                    st.markdown(f"step {sm['step']}: {_bold(sm['prompt'])}{_one_line(sm['text'])}")
                else:
                    st.markdown(f"step {sm['step']}: `{sm['masked']}`  \nguessed {sm['correct']}/{sm['total']} "
                                f"hidden tokens: {' '.join(map(repr, sm['guess']))}")


with chart_area:
    if jobs:
        ui.live(P, draw)          # this visitor's run, live, in the shipped model's place
    elif shipped:
        shipped_chart()
    else:
        st.info("No model ships here yet (`python -m engine bake` makes one): press Train.")

ui.real_scale(cfg)

# --- what the objectives are -----------------------------------------------------------------------------
st.subheader("Next token or masked token?")
a, b = st.columns(2)
a.markdown(
    "**GPT-style** models predict the **next token** from the tokens before it (causal language modelling), so "
    "they can write. Next-token prediction is *not* masked language modelling: GPT never sees a [MASK] token (the "
    "*causal mask* of its attention, on the Attention page, is another thing), and BERT never predicts the future.")
b.markdown(
    "**BERT-style** models predict **masked tokens** from both sides (masked language modelling), so they "
    "understand but do not write left to right. BERT picks 15% of the tokens to predict and, of those, replaces 80% "
    "with [MASK], 10% with a random token and leaves 10% unchanged, because [MASK] never appears when the model is "
    "later fine-tuned; it was trained on next-sentence prediction too (Devlin et al. 2019, §3.1), which RoBERTa "
    "dropped, matching or slightly improving the results (Liu et al. 2019, arXiv:1907.11692, §4.2). The BERT-style "
    "model here does masked tokens only, with the same 80/10/10 (transformers' DataCollatorForLanguageModeling), "
    "and no next-sentence prediction.")

# Runs to play with: this page's finished runs, or on a first visit the baked base model.
usable = [(j.label, j.result, j) for j in jobs if not j.active and j.result]
if not usable and not any(j.active for j in jobs) and shipped:
    usable = [("Baked base model", shipped, None)]
if usable:
    st.subheader("Use the trained model")
    if usable[0][2] is None:
        st.caption("Nothing trained here yet: this is the default base model that ships with the app "
                   "(2,500 steps on the built-in stories; `python -m engine bake` rebuilds it). Train above to use "
                   "yours.")
    tabs = st.tabs([label for label, _, _ in usable])
    for tab, (label, path, job) in zip(tabs, usable):
        with tab:
            uid = job.id if job else "baked"
            model, tok, info = ui.load_run(path)
            if info.objective == "clm":
                prompt = st.text_input("Prompt", PROMPT, key=f"{P}_prompt_{uid}")
                a, b, c = st.columns(3)
                temp = a.slider("Temperature", 0.0, 2.0, 0.8, 0.05, key=f"{P}_temp_{uid}",
                                help="0 picks the most likely token every time")
                top_k = b.slider("Top-k (0 = off)", 0, 50, 0, key=f"{P}_topk_{uid}")
                top_p = c.slider("Top-p", 0.05, 1.0, 1.0, 0.05, key=f"{P}_topp_{uid}")
                if st.button("Generate", key=f"{P}_gen_{uid}"):
                    st.session_state[f"{P}_out_{uid}"] = generate(model, tok, prompt, 200, temp, top_k, top_p)
                if out := st.session_state.get(f"{P}_out_{uid}"):
                    st.markdown(f"> {_bold(prompt)}{_one_line(out)}")
                probs = next_token_probs(model, tok, prompt, 12)
                fig = go.Figure(go.Bar(x=[p for _, p in probs][::-1], y=[repr(t) for t, _ in probs][::-1],
                                       orientation="h"))
                fig.update_layout(title="What the model predicts next after the prompt", height=340,
                                  margin=dict(l=10, r=10, t=40, b=10), xaxis_title="probability")
                ui.plot(fig, key=f"{P}_probs_{uid}",
                        notice=f"Each bar is the model's probability that the next token after your prompt is that "
                               f"one: the 12 most likely of its {len(tok)}. A uniform guess would give each "
                               f"{1 / len(tok):.1%}. Generating is drawing from these bars, one token at a time "
                               "(temperature flattens or sharpens them); edit the prompt to watch them change.")
            else:
                text = st.text_input("Text with <mask> where the model should guess", "Mia lives <mask>n the hill.",
                                     key=f"{P}_masktext_{uid}")
                guesses = fill_masks(model, tok, text)
                if not guesses:
                    st.info("Put <mask> somewhere in the text to see what the model guesses there.")
                for pos, top in guesses:
                    st.markdown(f"position {pos}: " + ", ".join(f"`{t!r}` {p:.0%}" for t, p in top))
            a, b = st.columns(2)
            with a:
                ui.download_run(path, key=f"{P}_dl_{uid}")
            with b:
                df = pd.DataFrame(job.snapshot()["records"] if job else runs.read_metrics(path))
                st.download_button("Download metrics (CSV)", df.to_csv(index=False), "metrics.csv", "text/csv",
                                   key=f"{P}_csv_{uid}", on_click="ignore", icon=":material/table:")
            st.caption(f"Saved as `{path.split('/')[-1]}`. Load it with "
                       f"`{'AutoModelForCausalLM' if info.objective == 'clm' else 'AutoModelForMaskedLM'}"
                       f".from_pretrained(folder)`.")
