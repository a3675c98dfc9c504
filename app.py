"""LLM Training Explorer: each stage of how a language model is made, trained live on a CPU."""
import streamlit as st

from app_pages import lesson, ui

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
     "Turn the base model into one that follows instructions, with loss masking, validation accuracy per task and "
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
     "One prompt answered by every stage's model side by side, and your run tree."),
    ("app_pages/attention.py", "Attention", ":material/visibility:", "Pretraining",
     "What attention heads do in a real pretrained model (MiniLM, word pieces) and in the models trained here, "
     "and an induction head forming."),
    ("app_pages/scaling.py", "Model scaling", ":material/trending_up:", "Pretraining",
     "Loss falls as a power law in size, until the data runs out: fit your own law, find the compute-optimal "
     "size, see a bigger model get worse; pruning and distillation."),
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
    st.markdown("**How a large language model is made, stage by stage, with a tiny model trained live on this "
                "computer's CPU at every stage.** Each page opens on its result; one click trains it yourself.")
    first, rest = st.columns([1, 2], vertical_alignment="center")
    with first:
        if st.button("Start with Pretraining", type="primary", icon=":material/arrow_forward:", key="home_start"):
            st.switch_page(PIPELINE[1][0])
        st.caption("Watch a tiny GPT learn to write. Then follow the arrows: each stage starts from the model "
                   "the one before it made.")
    with rest:
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
    st.markdown("**What is live:** every button that starts a job (Train, Run, Score the crawl) trains on this CPU "
                "while you watch, and its curves are computed as they appear. **What is not:** the default runs "
                "baked into `assets/runs` (a pretrained base GPT and two SFT models), which the pages start from so "
                "that every page works on a first visit; the recorded demos in `assets/demos`, which each page "
                "labels as recorded; and a Train press with settings this server has already run, which replays "
                "that finished run from the server's cache instead of training again (the Carbon page's experiment "
                "always runs afresh). Every figure from the literature carries its source.")


pages = [st.Page(home, title="Home", icon=":material/home:", default=True)]
pages += [st.Page(path, title=title, icon=icon) for path, title, icon, _ in PIPELINE]
pages += [st.Page(path, title=title, icon=icon) for path, title, icon, _, _ in BESIDE]
# For instructors, behind LLMX_ROOM_KEY: not a stage, so not in the picture.
pages.append(st.Page("app_pages/room.py", title="The room (instructors)", icon=":material/groups:"))
page = st.navigation(pages)
ui.visitor_id()   # the visitor's token goes into the URL on every page: a reload keeps their runs
st.session_state["_link_fields"] = []   # filled by the page's configs as it runs
if page.title != "Home":
    ui.preloaded()
try:
    page.run()
finally:  # also after a page's st.stop(): the tools must not vanish
    lesson.sidebar()
    ui.workshop_tools()
    # After the first page is drawn, not before: torch, transformers and the stages load in the
    # background, then codecarbon's hardware probe, so the first Train waits for none of them.
    ui.preload()
