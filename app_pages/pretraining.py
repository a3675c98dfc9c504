"""Pretraining: next-token (GPT) vs masked-token (BERT) prediction, trained live."""


import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_pages import ui
from engine import pretraining as pretrain
from engine.core import limits, runs, textio
from engine.core.config import UserError
from engine.core.models import SIZES, count_params
from engine.core.report import Task
from engine.core.sampling import fill_masks, generate, next_token_probs
from engine.pretraining import PretrainConfig
from engine.text import corpus

P = "pt"  # widget-key prefix and job slot of this page
ui.init_config(PretrainConfig, P)
ui.fit_widgets(PretrainConfig, P)
hlp = lambda name: ui.widget_help(PretrainConfig, name)  # noqa: E731

st.title("Pretraining")
st.markdown(
    "A language model learns by predicting hidden text from the text around it. **GPT-style** models "
    "predict the **next token** from the tokens before it (causal language modelling), so they can write. "
    "**BERT-style** models predict **masked tokens** from both sides (masked language modelling), so they "
    "understand but do not write left to right. Next-token prediction is *not* masked language modelling: "
    "GPT never sees a [MASK] token (the *causal mask* of its attention, on the Attention page, is another thing), "
    "and BERT never predicts the future. BERT picks 15% of the tokens to predict and, of those, replaces 80% with "
    "[MASK], 10% with a random token and leaves 10% unchanged, because [MASK] never appears when the model is "
    "later fine-tuned; it was trained on next-sentence prediction too (Devlin et al. 2019, §3.1), which RoBERTa "
    "dropped, matching or "
    "slightly improving the results (Liu et al. 2019, arXiv:1907.11692, §4.2). The BERT-style model here does "
    "masked tokens only, with the same 80/10/10 (transformers' DataCollatorForLanguageModeling), and no "
    "next-sentence prediction. Train one or both below and watch the loss fall.")

with st.container(border=True):
    ui.preset_picker(PretrainConfig, P)
    c1, c2, c3 = st.columns(3)
    with c1:
        st.markdown("**Data**")
        st.selectbox("Corpus", corpus.SOURCES, key=f"{P}.corpus", help=hlp("corpus"), format_func={
            "world": "Built-in stories (simple English)", "python-docs": "Python's documentation (real English)",
            "upload": "Upload a text file", "hub": "Hugging Face dataset (needs internet)"}.get)
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
        st.radio("Tokenizer", ("char", "bpe"), key=f"{P}.tokenizer", horizontal=True, help=hlp("tokenizer"),
                 format_func={"char": "Characters", "bpe": "Byte-level BPE"}.get)
        if st.session_state[f"{P}.tokenizer"] == "bpe":
            st.slider("BPE vocabulary size", *ui.bounds(PretrainConfig, "vocab_size"), key=f"{P}.vocab_size", step=4)
    with c2:
        st.markdown("**Model**")
        st.radio("Objective", ("clm", "mlm", "both"), key=f"{P}.objective", horizontal=True, help=hlp("objective"),
                 format_func={"clm": "Next token (GPT)", "mlm": "Masked token (BERT)", "both": "Both"}.get)
        st.segmented_control("Size", (*SIZES, "custom"), key=f"{P}.size", help="parameters in the layers")
        if st.session_state[f"{P}.size"] == "custom":
            a, b, c = st.columns(3)
            a.number_input("Layers", *ui.bounds(PretrainConfig, "n_layer"), key=f"{P}.n_layer")
            b.number_input("Heads", *ui.bounds(PretrainConfig, "n_head"), key=f"{P}.n_head")
            c.number_input("Width", *ui.bounds(PretrainConfig, "n_embd"), key=f"{P}.n_embd", step=8)
        st.select_slider("Context (tokens)", ui.options(PretrainConfig, "block_size"), key=f"{P}.block_size")
    with c3:
        st.markdown("**Training**")
        st.select_slider("Learning rate", ui.options(PretrainConfig, "lr"), key=f"{P}.lr", format_func=lambda v: f"{v:g}", help=hlp("lr"))
        a, b = st.columns(2)
        a.number_input("Steps", *ui.bounds(PretrainConfig, "steps"), key=f"{P}.steps", step=100)
        b.number_input("Batch size", *ui.bounds(PretrainConfig, "batch_size"), key=f"{P}.batch_size")
        a.number_input("Warmup steps", *ui.bounds(PretrainConfig, "warmup"), key=f"{P}.warmup", step=10)
        b.number_input("Time limit (s)", *ui.bounds(PretrainConfig, "max_seconds"), key=f"{P}.max_seconds", step=5)
        a.number_input("Seed", *ui.bounds(PretrainConfig, "seed"), key=f"{P}.seed")
        b.toggle("bf16 autocast", key=f"{P}.bf16", help=hlp("bf16"))

cfg: PretrainConfig = ui.read_config(PretrainConfig, P)
L, H, D = cfg.shape()
st.caption(f"{L} layers × {H} heads × width {D}, context {cfg.block_size}: about "
           f"{count_params(L, D, 0, 0):,} parameters in the layers. Warmup then cosine decay to a tenth of the "
           "learning rate, over the steps or the time limit, whichever ends first; AdamW; gradients clipped at "
           "1.0. Same seed and settings give the same curve when the steps finish within the time limit. "
           "**bf16 autocast** does the matrix products in bfloat16, which changes the arithmetic: the losses "
           "differ slightly from fp32 (final validation loss 1.739 against 1.738 when the Carbon page's "
           "experiment was measured, bench/RESULTS.md), and it is faster only on CPUs with bf16 instructions.")


def submissions() -> list[dict]:
    upload = st.session_state.get(f"_{P}_text", (None, None))[1] if cfg.corpus == "upload" else None
    text = pretrain.load_text(cfg, upload)   # raises UserError with the reason (empty, offline, ...)
    data = pretrain.prepare(cfg, text)         # tokenizes once; too-short text is refused here
    owner = ui.visitor_id()
    return [dict(key=one.key(data.text_digest), label={"clm": "GPT (next token)", "mlm": "BERT (masked token)"}[one.objective],
                 total_steps=one.steps, max_seconds=one.max_seconds, stage="pretrain",
                 task=Task(pretrain.run, one, {"upload": text, "owner": owner}))
            for one in cfg.objectives()]


jobs = ui.controls(P, submissions)
COLORS = {"GPT (next token)": "#1f77b4", "BERT (masked token)": "#d62728"}


def draw(snaps: list[dict]) -> None:
    for s in snaps:
        ui.status_line(s)
    series, refs = [], set()
    for s in snaps:
        tr = [r for r in s["records"] if "loss" in r]
        ev = [r for r in s["records"] if "eval_loss" in r]
        color = COLORS.get(s["label"])
        if tr:
            series.append(dict(name=f"{s['label']} train", x=[r["step"] for r in tr],
                               y=ui.smooth([r["loss"] for r in tr]), color=color))
        if ev:
            series.append(dict(name=f"{s['label']} validation", x=[r["step"] for r in ev],
                               y=[r["eval_loss"] for r in ev], dash="dash", color=color, markers=True))
        if "uniform_loss" in s["info"]:
            refs.add((s["info"]["uniform_loss"], f"ln(V) = {s['info']['uniform_loss']:.2f}: a uniform guess"))
    if series:
        ui.curve_chart(series, "Loss (nats per token)", hlines=sorted(refs), key=f"{P}_curve")
    cols = st.columns(max(1, len(snaps)))
    for col, s in zip(cols, snaps):
        tr = [r for r in s["records"] if "loss" in r]
        ev = [r for r in s["records"] if "eval_loss" in r]
        with col:
            st.markdown(f"**{s['label']}**" + (f" · {s['info']['params']:,} parameters, vocabulary "
                                                f"{s['info']['vocab_size']}" if s["info"] else ""))
            m = st.columns(5)
            m[0].metric("train loss", f"{ui.smooth([r['loss'] for r in tr])[-1]:.3f}" if tr else "–")
            m[1].metric("val loss", f"{ev[-1]['eval_loss']:.3f}" if ev else "–")
            m[2].metric("val perplexity", f"{ev[-1]['eval_perplexity']:.2f}" if ev else "–",
                        help="exp(val loss). For BERT it is over masked tokens only, so it is not "
                             "comparable with GPT's.")
            m[3].metric("tokens/s", f"{sum(r['tokens_per_sec'] for r in tr[-20:]) / len(tr[-20:]):,.0f}" if tr else "–")
            m[4].metric("learning rate", f"{tr[-1]['lr']:.1e}" if tr else "–", help="warmup, then cosine decay")
            for sm in reversed(s["samples"][-3:]):
                if "prompt" in sm:
                    st.markdown(f"step {sm['step']}: {_bold(sm['prompt'])}{_one_line(sm['text'])}")
                else:
                    st.markdown(f"step {sm['step']}: `{sm['masked']}`  \nguessed {sm['correct']}/{sm['total']} "
                                f"hidden tokens: {' '.join(map(repr, sm['guess']))}")
    if len(snaps) == 2:
        st.caption("The two losses measure different tasks: GPT predicts every next token from the left only; "
                   "BERT predicts 15% of tokens from both sides. Compare each curve with its own start, not "
                   "with the other.")


def _one_line(t: str) -> str:
    """Generated text, escaped, its line breaks shown as ⏎ so a sample reads as one line."""
    return ui.plain(t).replace("\n", " ⏎ ")


def _bold(t: str) -> str:
    """Markdown bold only holds when ** touches text: keep the prompt's edge spaces outside it."""
    core = t.strip()
    return t[:len(t) - len(t.lstrip())] + (f"**{_one_line(core)}**" if core else "") + t[len(t.rstrip()):]


ui.live(P, draw)

# Runs to play with: this page's finished runs, or on a first visit the baked base model.
usable = [(j.label, j.result, j) for j in jobs if not j.active and j.result]
if not usable and not any(j.active for j in jobs):
    usable = [("Baked base model", str(r.path), None) for r in runs.list_runs("pretrain") if r.baked]
if usable:
    st.subheader("Use the trained model")
    if usable[0][2] is None:
        st.caption("Nothing trained here yet: this is the default base model that ships with the app "
                   "(2,500 steps on the built-in stories; `python -m engine bake` rebuilds it). Train above to use yours.")
    tabs = st.tabs([label for label, _, _ in usable])
    for tab, (label, path, job) in zip(tabs, usable):
        with tab:
            uid = job.id if job else "baked"
            model, tok, info = ui.load_run(path)
            if info.objective == "clm":
                prompt = st.text_input("Prompt", "One morning, ", key=f"{P}_prompt_{uid}")
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
                fig.update_layout(title="Next-token probabilities after the prompt", height=340,
                                  margin=dict(l=10, r=10, t=40, b=10), xaxis_title="probability")
                ui.plot(fig, key=f"{P}_probs_{uid}")
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
