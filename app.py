"""LLM Training Explorer: each stage of how a language model is made, trained live on a CPU."""
import datasets
import streamlit as st
import transformers

from app_pages import ui

# Progress bars on every model load and save: with nobody reading the server's stderr, a full
# pipe blocked the jobs writing them (seen in the load test).
datasets.disable_progress_bars()
transformers.utils.logging.disable_progress_bar()
st.set_page_config(page_title="LLM Training Explorer", page_icon="🧠", layout="wide")

# The page scripts live in app_pages/, not pages/: on a fresh server, a first visit through a
# shared link to /<page> made Streamlit run that file from pages/ on its own (legacy multipage
# mode: no navigation, no wide layout) until someone opened the home page (seen in Chromium).
# PIPELINE is the order a model is made in; BESIDE are views across it,
# each drawn next to the stage it looks at. The home page draws its picture from these lists.
PIPELINE = [
    ("app_pages/data.py", "Data", ":material/database:",
     "Where training text comes from: a simulated web crawl, cleaning filters with measured precision and "
     "recall, deduplication, tokenizers, and a live test of whether cleaning helps."),
    ("app_pages/pretraining.py", "Pretraining", ":material/school:",
     "Train a tiny GPT (next token) or BERT (masked token) on a corpus and watch the loss fall and the text improve."),
    ("app_pages/sft.py", "Instruction tuning (SFT)", ":material/forum:",
     "Turn the base model into one that follows instructions, with loss masking, held-out accuracy per task and "
     "before/after answers."),
    ("app_pages/rlhf.py", "RLHF", ":material/thumbs_up_down:",
     "Label which of two answers is better (or let a simulated labeler), train a reward model on the "
     "comparisons, and pull the model toward it with PPO or DPO; watch reward hacking when the KL leash is off."),
    ("app_pages/cai.py", "Constitutional AI (RLAIF)", ":material/gavel:",
     "Write principles instead of labelling: an AI judge critiques red-team answers, the model is tuned on the "
     "revisions, then optimised on AI-labelled pairs; violations, helpfulness and evasion measured before and after."),
]
BESIDE = [
    ("app_pages/pipeline.py", "Your pipeline", ":material/account_tree:", None,
     "Your run tree, and one prompt answered by every stage's model side by side."),
    ("app_pages/attention.py", "Attention", ":material/visibility:", "Pretraining",
     "See what each head attends to in the models trained here and in a real pretrained encoder, and watch an "
     "induction head form."),
    ("app_pages/scaling.py", "Model scaling", ":material/trending_up:", "Pretraining",
     "Fit your own scaling law, find the compute-optimal size, see where bigger is not better; pruning and distillation."),
    ("app_pages/carbon.py", "Carbon footprint", ":material/eco:", None,
     "The measured energy and CO2 of every run here, and a calculator for real models checked against published figures."),
]


def pipeline_dot() -> str:
    main = [title for _, title, _, _ in PIPELINE]
    lines = ["digraph { rankdir=LR; bgcolor=transparent; nodesep=0.3;",
             'node [shape=box style="rounded,filled" fillcolor="#eef3fb" color="#3b6fd4" fontname=Helvetica];']
    lines += [f'"{a}" -> "{b}" [weight=10];' for a, b in zip(main, main[1:])] or [f'"{main[0]}";']
    for _, title, _, near, _ in BESIDE:
        lines.append(f'"{title}" [fillcolor="#f3f7ee" color="#5a8f3c"];')
        if near:
            lines.append(f'"{near}" -> "{title}" [style=dashed arrowhead=none color="#888888"];')
        else:  # views of the whole line stand in a column after its last stage
            lines.append(f'"{main[-1]}" -> "{title}" [style=invis];')
    return "\n".join(lines + ["}"])


def home():
    st.title("LLM Training Explorer")
    st.markdown("How a large language model is made, one stage at a time, with a tiny model **trained live** "
                "on this computer's CPU at every stage. **What is live:** every button that starts a job (Train, "
                "Run, Score the crawl) trains on this CPU while you watch, and its curves are computed as they "
                "appear. **What is not:** the default "
                "runs baked into `assets/runs` (a pretrained base GPT and two SFT models), which the pages start from "
                "so that every page works on a first visit; and a Train press with settings this server has already "
                "run, which replays that finished run from the server's cache instead of training again (the Carbon "
                "page's experiment always runs afresh). Every figure from the literature carries its source.")
    st.graphviz_chart(pipeline_dot())
    for path, title, icon, blurb in PIPELINE:
        with st.container(border=True):
            st.page_link(path, label=title, icon=icon)
            st.caption(blurb)
    if BESIDE:
        st.markdown("**Across the pipeline**")
        for path, title, icon, _, blurb in BESIDE:
            with st.container(border=True):
                st.page_link(path, label=title, icon=icon)
                st.caption(blurb)


pages = [st.Page(home, title="Home", icon=":material/home:", default=True)]
pages += [st.Page(path, title=title, icon=icon) for path, title, icon, _ in PIPELINE]
pages += [st.Page(path, title=title, icon=icon) for path, title, icon, _, _ in BESIDE]
page = st.navigation(pages)
ui.runner()   # the first page view starts the job runner, and its codecarbon warm-up, before any click
st.session_state["_link_fields"] = []   # filled by the page's configs as it runs
try:
    page.run()
finally:  # also after a page's st.stop(): the tools must not vanish
    ui.workshop_tools()
