"""Data: what cleaning buys first (two tiny GPTs, raw crawl vs cleaned, recorded and one click to train),
then where training text comes from, how a raw crawl is cleaned, and how text becomes tokens."""
import dataclasses
import hashlib
import html
import math
import os

import datasets
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app_pages import ui
from engine import demos
from engine.core.config import UserError
from engine.core.limits import MAX_JOB_SECONDS, MAX_UPLOAD_BYTES, MAX_UPLOAD_MB
from engine.core.models import SIZES
from engine.core.numbers import human
from engine.core.report import Task
from engine.core.tokenizer import bpe_tokenizer
from engine.data import compare, quality, scale
from engine.data import crawl as crawling
from engine.data import lab as tokenizer_lab
from engine.data.cleaning import HEURISTICS, POSITIVES, CleaningConfig, clean, train_texts
from engine.data.compare import CompareConfig
from engine.data.config import DataConfig
from engine.data.crawl import LABELS, CrawlConfig, build_crawl, read_documents

datasets.disable_progress_bars()  # app.py does this too; the page also runs on its own (tests)
P = "dt"  # widget-key prefix of this page; job slots below add a suffix
Q, CMP = f"{P}_quality", f"{P}_compare"
hlp = lambda name: ui.widget_help(DataConfig, name)  # noqa: E731

# name: (label, step). The bounds come from the config's fields (what the widget shows, else what the
# engine accepts); ui.fit_widgets clamps a link's value into them, so any link opens a working page.
SLIDERS = {
    "w_python_docs": ("Python docs (prose)", 0.05),
    "w_stdlib_code": ("Standard library source (code)", 0.05),
    "w_world": ("Built-in world stories", 0.05),
    "w_upload": ("Your data (upload or hub)", 0.05),
    **{f"p_{k}": (k.replace("_", " ").capitalize(), 0.01)
       for k in ("boilerplate", "spam", "markup", "duplicate", "near_duplicate", "foreign", "pii")},
    "min_words": ("Min words", 10),
    "min_mean_word_len": ("Min mean word length", 0.1),
    "max_mean_word_len": ("Max mean word length", 0.5),
    "max_symbol_ratio": ("Max symbols per word", 0.01),
    "min_line_punct": ("Min share of lines ending in punctuation", 0.01),
    "min_stop_words": ("Min distinct stop words", 1),
    "max_repeated_lines": ("Max share of repeated lines", 0.01),
    "shingle_words": ("Words per shingle", 1),
    "jaccard": ("Near-duplicate above Jaccard", 0.01),
    "num_perm": ("MinHash permutations", 16),
    "quality_n_train": ("Labelled training documents", 2),
    "quality_threshold": ("Flag when P(junk) is above", 0.01),
    "vocab_size": ("BPE vocabulary size", 4),
}
STAGES = {"raw": "raw crawl", "normalize": "normalised", "word_count": "word count", "word_length": "word length",
          "symbols": "symbols", "line_punct": "line punctuation", "stop_words": "stop words",
          "repeated_lines": "repeated lines", "exact_dedup": "exact dedup", "near_dedup": "near dedup",
          "pii": "PII redacted"}

ui.init_config(DataConfig, P)
ui.fit_widgets(DataConfig, P)
# The heuristics field is a comma-separated string; its widget is a multiselect with its own key.
st.session_state.setdefault(f"{P}_rules", [r for r in HEURISTICS if r in st.session_state[f"{P}.heuristics"]])
st.session_state[f"{P}.heuristics"] = ",".join(r for r in HEURISTICS if r in st.session_state[f"{P}_rules"])
# Widget values are in the session before the widgets are drawn, so the config can be read
# here and each section can show results right under its own controls.
cfg = ui.read_config(DataConfig, P)
crawl_cfg, clean_cfg, q_cfg, cmp_cfg = (cfg.part(p) for p in ("crawl", "cleaning", "quality", "compare"))


def slider(name: str, where=st) -> None:
    label, step = SLIDERS[name]
    lo, hi = ui.bounds(DataConfig, name)
    where.slider(label, type(step)(lo), type(step)(hi), step=step, key=f"{P}.{name}", help=hlp(name))


@st.cache_data(max_entries=8, show_spinner="Building the crawl and counting its tokens…")
def get_crawl(params: dict, upload_key: str, _upload):
    """The labelled crawl with each document's token count (counted once: the funnel reuses it)."""
    return crawling.with_tokens(build_crawl(CrawlConfig(**params), _upload))


@st.cache_data(max_entries=16, show_spinner=False)
def get_cleaned(crawl_key: str, params: dict, _crawl):
    # Elements made inside a cached function are replayed on a hit: the bar shows while the
    # pipeline runs the first time and is gone (replayed as emptied) afterwards.
    bar = st.progress(0.0, text="Cleaning…")
    res = clean(_crawl, CleaningConfig(**params),
                progress=lambda f, stage: bar.progress(f, text=f"Cleaning: {STAGES.get(stage, stage)}…"))
    bar.empty()
    return res


@st.cache_resource(max_entries=4, show_spinner="Training the BPE tokenizer…")
def get_bpe(crawl_key: str, _train_text: str):
    """BPE at the largest vocabulary; smaller ones are cut from it (exact, see truncate_bpe)."""
    return bpe_tokenizer(_train_text, max(tokenizer_lab.LAB_VOCABS))


@st.cache_data(max_entries=8, show_spinner=False)
def get_tokens_per_word(crawl_key: str, vocab: int, _tok, _mix):
    return tokenizer_lab.tokens_per_word(_tok, _mix)


@st.cache_data(max_entries=8, show_spinner=False)
def get_sweep(crawl_key: str, width: int, _big, _test: str):
    return tokenizer_lab.vocab_sweep(_big, _test, width)


st.title("Data")
st.markdown(
    "A language model is what its data makes it. Web text arrives as a **raw crawl**: real pages mixed with menus, "
    "spam, raw HTML, copies, other languages and personal data. Does cleaning it pay off?")


def crawl_and_cleaning():
    """(crawl, cleaning result, error, crawl key) for the settings on screen, from the caches. An upload
    is read where its widget is drawn (Sources, below), which reruns the page when the file changes."""
    upload = st.session_state.get(f"_{P}_upload")
    key = crawl_cfg.key(upload["key"] if upload else "")
    try:
        crawl = get_crawl(crawl_cfg.to_dict(), upload["key"] if upload else "", upload["dataset"] if upload else None)
    except UserError as e:
        return None, None, str(e), key
    return crawl, get_cleaned(key, clean_cfg.to_dict(), crawl), "", key


# --- what cleaning buys ---------------------------------------------------------------------------------------
DEMO = "data-cleaning-gap"
QUICK = {f"compare_{f.name}": f.default for f in dataclasses.fields(CompareConfig)}   # the quick-demo settings
COLORS = {"raw": "#d62728", "cleaned": "#2ca02c"}

st.header("What cleaning buys")
st.markdown(
    "Two identical tiny GPTs read the **same number of characters**, one from the raw crawl, one from the crawl "
    "after the cleaning pipeline below, and are scored on the **same clean held-out documents**, which neither saw.")


def compare_submissions() -> list[dict]:
    crawl, result, crawl_error, crawl_key = crawl_and_cleaning()   # cached: built when the page first drew
    if crawl is None:
        raise UserError(crawl_error)
    texts = train_texts(crawl, result, budget=cmp_cfg.budget)
    return [dict(key=cmp_cfg.key(crawl_key, clean_cfg.key()), label="Raw vs cleaned", stage="data",
                 total_steps=2 * cmp_cfg.steps, max_seconds=2 * cmp_cfg.max_seconds + 30,
                 task=Task(compare.compare, cmp_cfg, {"texts": texts}))]


def draw_compare(snaps: list[dict], recorded: dict | None = None) -> None:
    """A raw-vs-cleaned job, live or finished, or the recorded demo (`recorded`, drawn as recorded)."""
    snap = snaps[0]
    if recorded:
        c = recorded["stage_config"]
        st.caption(f":material/history: **Recorded**, not live: two {c['size']} models, {c['steps']} steps each, seed "
                   f"{c['seed']} (the quick-demo settings), on the default crawl and cleaning (`python -m engine demo "
                   f"{DEMO}` records it again).")
    else:
        ui.status_line(snap)
    info, series, val = snap["info"], [], {}
    for run in compare.RUNS:
        rec = [r for r in snap["records"] if r.get("run") == run]
        tr, ev = [r for r in rec if "loss" in r], [r for r in rec if "eval_loss" in r]
        if tr:
            series.append(dict(name=f"{run}: {ui.label('loss')}", x=[r["part_step"] for r in tr],
                               y=ui.smooth([r["loss"] for r in tr]), color=COLORS[run], dash="dot"))
        if ev:
            series.append(dict(name=f"{run}: {ui.label('eval_loss')}",
                               x=[r["part_step"] for r in ev], y=[r["eval_loss"] for r in ev], color=COLORS[run],
                               markers=True))
        val[run] = {r["part_step"]: r["eval_loss"] for r in ev}
    final = info.get("final", {})
    done = snap["status"] == "done" and len(final) == 2
    steps = max((r["part_step"] for r in snap["records"] if "part_step" in r), default=0)
    if done:
        gap = final["raw"] - final["cleaned"]
        match = compare.steps_to_match(snap["records"])
        m = st.columns(3)
        m[0].metric(f"raw crawl: {ui.label('eval_loss')}", f"{final['raw']:.3f}",
                    help=ui.metric_help("eval_loss", "Nats per character on the clean held-out documents, after "
                                                     "the last step."))
        m[1].metric(f"cleaned crawl: {ui.label('eval_loss')}", f"{final['cleaned']:.3f}", f"{-gap:+.3f}",
                    delta_color="inverse", help=ui.metric_help("eval_loss", "The same held-out text, the same steps."))
        m[2].metric("cleaned model reached the raw one's final loss",
                    f"step {match:.0f} of {steps}" if match else "never",
                    help="Where the cleaned model's validation curve first crossed the raw model's last value "
                         "(linear between evaluations): the same result in fewer steps.")
    if series:
        low = min(r["eval_loss"] for r in snap["records"] if "eval_loss" in r)
        left, right = st.columns([3, 2])
        with left:
            ui.curve_chart(series, "Loss, nats per character", ytitle="loss (nats per character)",
                           key=f"{CMP}_{'demo_' if recorded else ''}curve", height=300,
                           hlines=[(info["uniform_loss"], f"ln(V) = {info['uniform_loss']:.2f}: a uniform guess")],
                           notice=f"Both models fall from ln {info['vocab_size']} = {info['uniform_loss']:.2f} (a "
                                  f"uniform guess over {info['vocab_size']} characters) to about {low:.1f} nats per "
                                  "character; "
                                  "on this scale the two validation curves (solid) nearly overlap, so the gap has its "
                                  "own chart. These are the toy's numbers: tiny character-level models trained for "
                                  "seconds on a mix of prose and code. For scale, nanoGPT's 6-layer character model "
                                  "reaches 1.47 on Shakespeare (nanoGPT's README).")
        # The gap is small next to the fall from ln(V): drawn on its own scale it can be seen.
        both = sorted(set(val.get("raw", {})) & set(val.get("cleaned", {})))
        with right:
            last = f"ends at {val['raw'][both[-1]] - val['cleaned'][both[-1]]:+.3f}" if both else "grows as they learn"
            ui.curve_chart([dict(name="raw − cleaned", x=both, y=[val["raw"][k] - val["cleaned"][k] for k in both],
                                 color="#555", markers=True)], "Validation gap: above 0, cleaning helps",
                           ytitle="nats per character", hlines=[(0.0, "no difference")], height=300,
                           key=f"{CMP}_{'demo_' if recorded else ''}gap",
                           notice="The gap starts at exactly 0 (both models start from the same weights) and "
                                  f"{last} nats per character: the cleaned model predicts clean text better, because "
                                  "the same budget went to real documents instead of junk and copies. One seed; over "
                                  "seeds 0, 1 and 2 the gap was 0.035, 0.034 and 0.051 (bench/RESULTS.md).")
    if done:
        if gap > 0:
            st.success(f"The model trained on cleaned text ends {gap:.3f} nats per character lower on clean held-out "
                       f"text (its perplexity {1 - math.exp(-gap):.1%} lower): the same budget spent on real documents "
                       "instead of junk and copies.", icon=":material/check_circle:")
        else:
            st.warning(f"This time the cleaned model did **not** end lower ({-gap:+.3f} nats per character). With "
                       "tiny models and short runs the gap can be within noise: try more steps, another seed, or "
                       "more junk in the crawl.")
    if "train_chars" in info:
        st.caption(f"Training text: {info['train_chars']:,} characters each. Held-out: {info['heldout_chars']:,} "
                   f"characters of clean documents. Vocabulary: {info['vocab_size']} characters. "
                   + info.get("note", ""))


b = st.columns([1, 3], vertical_alignment="center")
with b[0]:
    ui.one_click("What cleaning buys", P, CMP, QUICK, key=f"{CMP}_what_cleaning_buys",
                 help="Train both models now with the quick-demo settings (two 50k models, 400 steps each, seed 0) "
                      "on the crawl and filters as they are set below: about 20 s.")
b[1].caption("Trains both models live with the quick-demo settings (about 20 s). Or change the crawl and the filters "
             "below, then press **Train both** under the charts.")
shown = st.container()   # the recorded demo, or this visitor's own run
ui.preset_picker(DataConfig, P)
cmp_jobs = ui.controls(CMP, compare_submissions, label="Train both")
with ui.advanced("training settings"):
    c = st.columns(3)
    c[0].number_input("Training characters each", *ui.bounds(DataConfig, "compare_budget"), step=50_000,
                      key=f"{P}.compare_budget", help=hlp("compare_budget"))
    c[1].radio("Model size", tuple(SIZES), key=f"{P}.compare_size", horizontal=True, help=hlp("compare_size"))
    c[2].number_input("Steps each", *ui.bounds(DataConfig, "compare_steps"), step=50, key=f"{P}.compare_steps",
                      help=hlp("compare_steps"))
    c[0].select_slider("Learning rate", ui.options(DataConfig, "compare_lr"), key=f"{P}.compare_lr",
                       format_func=lambda v: f"{v:g}", help=hlp("compare_lr"))
    c[1].number_input("Batch size", *ui.bounds(DataConfig, "compare_batch_size"), key=f"{P}.compare_batch_size",
                      help=hlp("compare_batch_size"))
    c[2].number_input("Context (characters)", *ui.bounds(DataConfig, "compare_block_size"),
                      key=f"{P}.compare_block_size", help=hlp("compare_block_size"))
    c[0].number_input("Evaluate every (steps)", *ui.bounds(DataConfig, "compare_eval_every"), step=5,
                      key=f"{P}.compare_eval_every", help=hlp("compare_eval_every"))
    c[1].number_input("Time limit per model (s)", *ui.bounds(DataConfig, "compare_max_seconds"), step=10,
                      key=f"{P}.compare_max_seconds", help=hlp("compare_max_seconds"))
    c[2].number_input("Seed", *ui.bounds(DataConfig, "compare_seed"), key=f"{P}.compare_seed", help=hlp("compare_seed"))
    st.caption(f"Each model sees {cmp_cfg.steps * cmp_cfg.batch_size * cmp_cfg.block_size:,} characters "
               f"({cmp_cfg.steps} steps × {cmp_cfg.batch_size} × {cmp_cfg.block_size}). They train one after the "
               "other, so they do not slow each other down.")
with shown:
    if cmp_jobs:
        ui.live(CMP, draw_compare)
    elif demo := demos.load(DEMO):
        draw_compare([{"status": demo["status"], "info": demo["info"], "records": demo["records"]}], recorded=demo)
    else:
        st.info("Press **What cleaning buys** to train both models (about 20 s).", icon=":material/play_arrow:")

# --- sources and mixture ----------------------------------------------------------------------------
# The crawl and its cleaning are built here, after the recorded result above is drawn: a first visit sees
# the payoff while they build (a few seconds on a fresh server).
crawl, result, crawl_error, crawl_key = crawl_and_cleaning()
upload = st.session_state.get(f"_{P}_upload")
st.header("Sources and mixture")
left, right = st.columns([3, 2])
with left:
    st.markdown("**Mixture weights** (shares of the clean documents)")
    a, b = st.columns(2)
    for i, name in enumerate(("w_python_docs", "w_stdlib_code", "w_world", "w_upload")):
        slider(name, (a, b)[i % 2])
    with ui.advanced("crawl settings: size, seed, junk"):
        a, b = st.columns(2)
        a.number_input("Documents in the crawl", *ui.bounds(DataConfig, "n_docs"), step=250, key=f"{P}.n_docs",
                       help=hlp("n_docs"))
        b.number_input("Crawl seed", *ui.bounds(DataConfig, "seed"), key=f"{P}.seed", help=hlp("seed"))
        st.markdown("**Junk in the crawl** (shares of all documents)")
        a, b = st.columns(2)
        for i, k in enumerate(("boilerplate", "spam", "markup", "duplicate", "near_duplicate", "foreign", "pii")):
            slider(f"p_{k}", (a, b)[i % 2])
with right:
    st.markdown("**Your data**")
    up = st.file_uploader("Upload .txt, .jsonl, .csv or .parquet", type=["txt", "jsonl", "csv", "parquet"],
                          key=f"{P}_file", max_upload_size=MAX_UPLOAD_MB,
                          help=f"At most {MAX_UPLOAD_BYTES / 1e6:.0f} MB. Text comes from a "
                          "column named 'text', else the first text column; a .txt splits at blank lines.")
    used = upload["key"] if upload else None
    if up is not None and st.session_state.get(f"_{P}_upload", {}).get("file_id") != up.file_id:
        try:
            got = read_documents(up.getvalue(), up.name)
            st.session_state[f"_{P}_upload"] = {
                "file_id": up.file_id, "name": up.name, "dataset": got.dataset, "bad_lines": got.bad_lines,
                "key": hashlib.sha1(up.getvalue()).hexdigest()[:16], "column": got.column}
        except UserError as e:
            st.session_state.pop(f"_{P}_upload", None)
            st.error(str(e), icon=":material/error:")
    elif up is None and st.session_state.get(f"_{P}_upload", {}).get("file_id"):
        st.session_state.pop(f"_{P}_upload")  # the file was removed from the uploader
    if st.session_state.get(f"_{P}_upload", {}).get("key") != used:
        st.rerun()   # the crawl above was built without this file: build it again

    def load_hub() -> None:
        st.session_state.pop(f"_{P}_hub_error", None)
        try:
            name = st.session_state[f"{P}.hub_name"]
            st.session_state[f"_{P}_upload"] = {"file_id": None, "name": f"hub: {name}", "bad_lines": [],
                                                "dataset": crawling.hub_documents(name), "column": "text",
                                                "key": hashlib.sha1(name.encode()).hexdigest()[:16]}
        except UserError as e:
            st.session_state[f"_{P}_hub_error"] = str(e)

    a, b = st.columns([3, 1], vertical_alignment="bottom")
    a.text_input("…or a Hugging Face dataset", key=f"{P}.hub_name", placeholder="roneneldan/TinyStories")
    b.button("Load", key=f"{P}_hub_load", on_click=load_hub, width="stretch")
    if err := st.session_state.get(f"_{P}_hub_error"):
        st.error(err, icon=":material/cloud_off:")
    if upload:
        st.caption(f"Loaded **{upload['name']}**: {len(upload['dataset']):,} documents from column "
                   f"'{upload['column']}'." + ("" if crawl_cfg.w_upload else " Raise *Your data* to mix it in."))
        if upload["bad_lines"]:
            lines = upload["bad_lines"]
            st.warning(f"{len(lines)} line(s) were not valid JSON objects and were skipped: line "
                       f"{', '.join(map(str, lines[:20]))}{' …' if len(lines) > 20 else ''}.",
                       icon=":material/warning:")

if crawl is None:
    st.error(crawl_error, icon=":material/error:")
    st.stop()

sources = pd.DataFrame(crawling.source_table(crawl, result.dataset))
st.dataframe(sources, hide_index=True, width="stretch", key=f"{P}_sources",
             column_config={c: st.column_config.NumberColumn(format="localized") for c in
                            ("documents", "words", "tokens", "documents kept", "tokens kept")})
st.caption("Tokens are counted with all-MiniLM-L6-v2's WordPiece vocabulary (BERT's, 30,522 entries). "
           "*web* is the junk the crawl picked up from pages nobody chose; copies count under their original's source.")
web = sources.set_index("source").loc["web"] if "web" in set(sources["source"]) else None
ui.takeaway((f"Compare *documents* with *documents kept*: of the {web['documents']:,} *web* junk documents, "
             f"{web['documents kept']:,} survive the cleaning below. " if web is not None else "")
            + "The real sources lose their crawled copies (a copy counts under its original's source) and some good "
              "documents a threshold misjudged (the table under the funnel says which).")

# --- the cleaning pipeline ----------------------------------------------------------------------------
st.header("The cleaning pipeline")
st.markdown(
    "Each stage runs in order on what the last one kept: **normalise** Unicode and whitespace, the **heuristic "
    "filters** of Gopher (Rae et al. 2021), C4 (Raffel et al. 2020) and FineWeb (Penedo et al. 2024), **exact** "
    "and **near-duplicate** removal (MinHash + LSH), and **PII redaction** (e-mail addresses and phone numbers "
    "become placeholders; the document stays). Move a threshold and the pipeline runs again.")
if result.message:
    st.warning(result.message, icon=":material/filter_alt_off:")
fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("documents kept", "tokens kept"),
                    horizontal_spacing=0.04)
stages = [STAGES.get(f["stage"], f["stage"]) for f in result.funnel]
for col, what, color in ((1, "documents", "#4a78c2"), (2, "tokens", "#2ca02c")):
    fig.add_trace(go.Funnel(y=stages, x=[f[what] for f in result.funnel], marker_color=color, name=what,
                            texttemplate="%{value:,} · %{percentInitial:.0%}", textfont_size=13), 1, col)
fig.update_layout(height=60 + 34 * len(stages), margin=dict(l=10, r=10, t=30, b=10), showlegend=False)
kept_docs = result.funnel[-1]["documents"] / max(1, result.funnel[0]["documents"])
ui.plot(fig, key=f"{P}_funnel",
        notice=f"{kept_docs:.0%} of this crawl's documents survive every stage. That share is the toy's: the "
               "simulated crawl is mostly clean by design, so every kind of junk stays visible. Real crawls lose far "
               "more: C4 kept about 750 GB of a monthly crawl's roughly 20 TB of text (Raffel et al. 2020, §2.2).")
r = result.redacted
st.caption(f"Pipeline: {result.seconds:.1f} s on {len(crawl):,} documents (cached: the same settings again are "
           f"instant). PII: {r['emails']} e-mail addresses and {r['phones']} phone numbers redacted in "
           f"{r['documents']} documents.")
with st.container(border=True):
    st.multiselect("Heuristic filters", HEURISTICS, key=f"{P}_rules", help=hlp("heuristics"))
    c = st.columns(4)
    for col, name in zip(c, ("normalize", "exact_dedup", "near_dedup", "redact_pii")):
        col.toggle({"normalize": "Normalise first", "exact_dedup": "Exact dedup", "near_dedup": "Near dedup",
                    "redact_pii": "Redact PII"}[name], key=f"{P}.{name}", help=hlp(name))
    with ui.advanced("filter thresholds"):
        c = st.columns(4)
        slider("min_words", c[0])
        c[1].number_input("Max words", *ui.bounds(DataConfig, "max_words"), key=f"{P}.max_words",
                          help=hlp("max_words"))
        for col, name in zip(c[2:], ("min_mean_word_len", "max_mean_word_len")):
            slider(name, col)
        for col, name in zip(st.columns(4), ("max_symbol_ratio", "min_line_punct", "min_stop_words",
                                             "max_repeated_lines")):
            slider(name, col)
        c = st.columns(4)
        for col, name in zip(c, ("shingle_words", "jaccard", "num_perm")):
            slider(name, col)
        st.toggle("Prose heuristics on code too", key=f"{P}.heuristics_on_code", help=hlp("heuristics_on_code"))

st.subheader("What each filter removed")
removed = pd.DataFrame(result.removed, columns=["id", "stage", "reason", "source", "label", "preview"])
if removed.empty:
    st.info("Nothing was removed with these settings.")
else:
    removed["stage"] = removed["stage"].map(lambda s: STAGES.get(s, s))
    table = pd.crosstab(removed["stage"], removed["label"], margins=True, margins_name="all")
    stage_rows = [s for s in STAGES.values() if s in table.index] + ["all"]  # in pipeline order
    st.dataframe(table.loc[stage_rows, [lab for lab in (*LABELS, "all") if lab in table.columns]], width="stretch",
                 key=f"{P}_removed_by_label")
    st.caption("Rows: the stage that removed a document (the first rule it failed). Columns: what the document "
               "really was. *clean* or *pii* in a row are good documents lost.")
    good = [c for c in ("clean", "pii") if c in table.columns]
    lost = table.loc[table.index != "all", good].sum(axis=1) if good else pd.Series(dtype=int)
    ui.takeaway("Copies go to the deduplicators; the other junk is caught by the heuristics, each kind by several. "
                + (f"{int(lost.sum()):,} good documents (*clean* or *pii*) were lost too, most of them to "
                   f"*{lost.idxmax()}*: the price of its threshold." if lost.sum() else
                   "No good document was lost with these thresholds."))
    pick = st.selectbox("Show the removed documents of", ["all stages", *removed["stage"].unique()],
                        key=f"{P}_removed_pick")
    shown_rows = removed if pick == "all stages" else removed[removed["stage"] == pick]
    st.dataframe(shown_rows, hide_index=True, width="stretch", height=260, key=f"{P}_removed")

st.subheader("Precision and recall against the labels")
q_jobs = ui.jobs_of(Q)
q_done = next((j for j in q_jobs if j.status == "done" and "p_junk" in j.info), None)
q_current = q_done is not None and st.session_state.get(f"_{P}_quality_crawl") == crawl_key
scores = list(result.scores)
if q_current:
    scores.append(quality.quality_score(crawl["label"], crawl["id"], q_done.info["p_junk"],
                                         q_done.info["train_ids"], q_cfg.threshold))
if scores:
    order = ["filter", "precision", "recall", "flagged", "tp", "fp", "fn", "positives"]
    st.dataframe(pd.DataFrame(scores)[order], hide_index=True, width="stretch", height="content",
                 key=f"{P}_scores", column_config={
        "precision": st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1),
        "recall": st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1)})
    st.caption(
        "**Precision**: of the documents a filter flagged, the share that were what it exists to remove "
        "(*positives*). **Recall**: of those that reached it, the share it flagged. Each heuristic is judged alone "
        "on everything that reached the heuristics; *all_filters* judges the whole run against every junk label. "
        + ("The quality model is judged on the documents it was not trained on." if q_current else
           "Run the quality model below to add its row."))
    ui.takeaway("A filter is useful when both bars are long: high precision (it rarely removes good text) and high "
                "recall (it catches most of its kind). These are scored against the simulated crawl's own labels, "
                "which real crawls do not have: there, filters are judged by training models on what they keep.")
else:
    st.info("Your data has no labels, so there is nothing to score the filters against.")

# --- model-based quality filtering ----------------------------------------------------------------------
st.header("Model-based quality filtering")
st.markdown(
    "Heuristics are hand-written rules. FineWeb-Edu and DCLM instead **train a classifier** and keep the documents "
    "it scores highest. **FineWeb-Edu** had Llama-3-70B-Instruct rate about 450,000 web pages for educational "
    "value (0 to 5), trained a regression head on the Snowflake-arctic-embed encoder to predict those ratings, and "
    "kept pages scored 3 or more (Penedo et al. 2024, *The FineWeb Datasets*, arXiv:2406.17557). **DCLM** trained a "
    "fastText classifier on word n-grams (no pretrained encoder), with OpenHermes-2.5 instructions and "
    "high-scoring r/ExplainLikeImFive answers as positives and random documents of its RefinedWeb-style crawl as "
    "negatives, and kept the top-scoring 10% (Li et al. 2024, *DataComp-LM*, arXiv:2406.11794, §4.4). **The toy "
    "here** is the FineWeb-Edu kind, much smaller: it embeds each document with all-MiniLM-L6-v2 (a real pretrained "
    "6-layer BERT-family model, kept frozen) and fits logistic regression on the labelled documents set below (40 "
    "by default), whose labels the simulated crawl knows, instead of hundreds of thousands of ratings by a large "
    "model. Embedding the crawl takes tens of seconds on a shared CPU, "
    "so it runs as a job; the embeddings are kept, so scoring the same crawl again is quick.")
with st.container(border=True):
    c = st.columns(2)
    slider("quality_n_train", c[0])
    slider("quality_threshold", c[1])
    with ui.advanced():
        st.select_slider("Tokens read per document", ui.options(DataConfig, "quality_max_tokens"),
                         key=f"{P}.quality_max_tokens", help=hlp("quality_max_tokens"))


def quality_submissions() -> list[dict]:
    # The threshold is applied by the page, so it is not part of what the job computes.
    one = q_cfg.replace(threshold=0.5)
    st.session_state[f"_{P}_quality_crawl"] = crawl_key
    return [dict(key=one.key(crawl_key), label="Quality model", stage="data", total_steps=1,
                 max_seconds=MAX_JOB_SECONDS, task=Task(quality.quality_job, one, {"crawl": crawl}))]


ui.controls(Q, quality_submissions, label="Score the crawl")


def draw_quality(snaps: list[dict]) -> None:
    ui.status_line(snaps[0])


ui.live(Q, draw_quality)
if q_done and not q_current:
    st.info("The crawl changed since the quality model ran: score it again to compare.", icon=":material/update:")
elif q_current:
    p = pd.DataFrame({"P(junk)": q_done.info["p_junk"], "label": crawl["label"]})
    fig = go.Figure([go.Histogram(x=p[p["label"] == lab]["P(junk)"], name=lab, nbinsx=40, opacity=0.75)
                     for lab in LABELS if lab in set(p["label"])])
    fig.add_vline(x=q_cfg.threshold, line_dash="dot", annotation_text="threshold")
    fig.update_layout(barmode="stack", height=300, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="P(junk)",
                      yaxis_title="documents", title="The classifier's scores, by true label")
    ui.plot(fig, key=f"{P}_quality_hist",
            notice="Clean documents pile up near P(junk) = 0 and junk near 1; whatever lies on the wrong side of the "
                   "dotted threshold is a mistake (good text dropped, or junk kept). A frozen encoder and a few dozen "
                   "labels separate this toy's junk well because it is blatant; FineWeb-Edu needed about 450,000 "
                   "ratings by a 70B model for the subtler question of educational value.")
    st.caption(f"Trained on {len(q_done.info['train_ids'])} labelled documents in {q_done.info['seconds']:.1f} s. "
               f"Its positives are {', '.join(POSITIVES['any_heuristic'])}: copies are the deduplicators' job. "
               "Move the threshold: the table above follows without a new job.")

# --- tokenizer lab -----------------------------------------------------------------------------------------
st.header("Tokenizer lab")
st.markdown(
    "A model reads **tokens**, not characters. Byte-level BPE (GPT-2's scheme) starts from the 256 bytes and "
    "repeatedly merges the most frequent adjacent pair into a new token, until the vocabulary is full. Here it "
    "learns from the mixture above, so what it merges depends on your weights.")
slider("vocab_size")
mix = tokenizer_lab.mixture(crawl)
train_text, test_text = tokenizer_lab.split_mixture(mix, tokenizer_lab.LAB_CHARS)
if not train_text.strip() or not test_text.strip():
    st.info("The mixture has too few documents to train a tokenizer: raise the crawl size or a source's weight.")
else:
    big = get_bpe(crawl_key, train_text)
    tok = tokenizer_lab.truncate_bpe(big, cfg.vocab_size)
    left, right = st.columns(2)
    with left:
        st.markdown(f"**Tokens per word** with your BPE ({len(tok):,} tokens) and BERT's WordPiece (30,522)")
        st.dataframe(pd.DataFrame(get_tokens_per_word(crawl_key, cfg.vocab_size, tok, mix)), hide_index=True,
                     width="stretch", key=f"{P}_tpw",
                     column_config={c: st.column_config.NumberColumn(format="%.2f") for c in
                                    ("tokens per word (BPE)", "tokens per word (WordPiece)")})
        ui.takeaway("Code costs more tokens per word than prose: indentation, brackets and identifiers are rarer "
                    "pairs than common English words, so fewer of them earn a merge.")
    with right:
        own = st.text_area("Your text", "Tokenizers split rare words into pieces: unbelievably, naïve café.\n"
                           "def tokenize(text):\n    return text.split()  # 3 + 4 = 7", key=f"{P}_own", height=140)
        spans = tokenizer_lab.token_spans(tok, own)
        colors = ("#dbeafe", "#fde68a", "#bbf7d0", "#fbcfe8", "#ddd6fe", "#fed7aa")
        # Every piece of the user's text is escaped: it is shown as text, never run as HTML.
        st.html('<div style="font-family:monospace;white-space:pre-wrap;line-height:1.9">' + "".join(
            f'<span title="token {tid}" style="background:{colors[i % len(colors)]};border-radius:3px;'
            f'padding:1px 0">{html.escape(piece)}</span>' for i, (piece, tid) in enumerate(spans)) + "</div>")
        st.caption(f"{len(spans)} tokens for {len(own)} characters and {len(own.split())} words. "
                   "Hover a token to see its id.")
    width = SIZES[cmp_cfg.size][2]
    sweep = get_sweep(crawl_key, width, big, test_text)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=[r["vocab"] for r in sweep], y=[r["tokens"] for r in sweep], mode="lines+markers",
                             name="sequence length: tokens for the test text"), secondary_y=False)
    fig.add_trace(go.Scatter(x=[r["vocab"] for r in sweep], y=[r["embedding parameters"] for r in sweep],
                             mode="lines+markers", name=f"embedding parameters (vocab × width {width})"),
                  secondary_y=True)
    fig.update_xaxes(type="log", title="vocabulary size", tickvals=[r["vocab"] for r in sweep])
    fig.update_yaxes(title_text="tokens", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="parameters", rangemode="tozero", secondary_y=True)
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.3),
                      title="Vocabulary size: shorter sequences, bigger embeddings")
    ui.plot(fig, key=f"{P}_sweep",
            notice=f"The blue curve falls and the other rises: from {sweep[0]['vocab']} to {sweep[-1]['vocab']} "
                   f"tokens the test text shrinks {sweep[0]['tokens'] / max(1, sweep[-1]['tokens']):.1f}× while the "
                   f"embedding grows {sweep[-1]['vocab'] // sweep[0]['vocab']}×. Real models sit far to the right: "
                   "GPT-2's vocabulary has 50,257 tokens (Radford et al. 2019), Llama 3's 128K (Dubey et al. 2024).")
    st.caption(f"Measured on {len(test_text):,} characters of the mixture the tokenizer did not train on. "
               f"From {sweep[0]['vocab']} to {sweep[-1]['vocab']} tokens the same text shrinks from "
               f"{sweep[0]['tokens']:,} to {sweep[-1]['tokens']:,} tokens ({sweep[0]['chars per token']:.1f} → "
               f"{sweep[-1]['chars per token']:.1f} characters per token), so attention covers more text per "
               f"position, while the embedding matrix grows {sweep[-1]['vocab'] // sweep[0]['vocab']}×. At GPT-2's "
               "scale the embedding is 50,257 × 768 ≈ 38.6M of its 124M parameters.")

# --- scale in context ------------------------------------------------------------------------------------------
st.header("Scale in context")
rows = scale.scale_rows(result.funnel[0]["tokens"], result.funnel[-1]["tokens"])
fig = go.Figure(go.Bar(x=[r["tokens"] for r in rows], y=[r["dataset"] for r in rows], orientation="h",
                       marker_color=["#ff7f0e" if r["source"] == "measured here" else "#4a78c2" for r in rows],
                       text=[f"≈ {human(r['tokens'])}" for r in rows], textposition="outside",
                       hovertext=[r["how"] for r in rows]))
fig.update_xaxes(type="log", range=[4, 14.5], title="tokens (about; log scale)",
                 tickvals=[1e4, 1e6, 1e8, 1e10, 1e12, 1e14], ticktext=["10k", "1M", "100M", "10B", "1T", "100T"])
fig.update_layout(height=420, margin=dict(l=10, r=10, t=40, b=10), yaxis=dict(autorange="reversed"),
                  title="This page's corpus next to what real models were trained on")
here, bert, llama = rows[1]["tokens"], rows[2]["tokens"], rows[-1]["tokens"]
ui.plot(fig, key=f"{P}_scale",
        notice=f"The axis is logarithmic: each gridline is 100× the last. This page's cleaned crawl ({human(here)} "
               f"tokens) is about {human(bert / max(1, here))} times smaller than BERT's books and Wikipedia and "
               f"{human(llama / max(1, here))} times smaller than Llama 3's pretraining data: the pipeline is the same "
               "idea, the scale is not.")
st.dataframe(pd.DataFrame([{"dataset": r["dataset"], "published": r["published"], "≈ tokens": human(r["tokens"]),
                            "source": r["source"], "how the token figure was made": r["how"]} for r in rows]),
             hide_index=True, width="stretch", key=f"{P}_scale_table",
             column_config={"source": st.column_config.TextColumn(width="large"),
                            "how the token figure was made": st.column_config.TextColumn(width="large")})
st.markdown("**Common misstatements, corrected**\n\n"
            "- **“Common Crawl is about 24 TB.”** Common Crawl is every crawl since 2008 together: petabytes, over "
            "100 billion pages (Thompson 2024, arXiv:2404.09770). Even *one monthly crawl* is tens of terabytes "
            "compressed: February 2019's holds 2.9 billion pages, 225 TiB uncompressed, about 60 TiB as compressed "
            "WARC files and 7.6 TiB as compressed extracted text (Common Crawl blog, 'February 2019 crawl archive now "
            "available'); its extracted text is \"around 20TB\" a month (Raffel et al. 2020, T5, §2.2). GPT-3's 45 TB "
            "were 41 monthly crawls from 2016 to 2019, compressed, before filtering (Brown et al. 2020, "
            "arXiv:2005.14165, §2.2); C4's 750 GB is one monthly crawl (April 2019) after cleaning "
            "(Raffel et al. 2020, "
            "§2.2).\n"
            + "\n".join(f"- {m}" for m in scale.MISSTATEMENTS))
if (load := os.getloadavg()[0]) > (os.cpu_count() or 1):
    st.caption(f"This machine is busy (load {load:.1f} on {os.cpu_count()} cores): times on this page include "
               "waiting for the CPU.")
