"""LLM Training Explorer: each stage of how a language model is made, trained live on a CPU."""
import datasets
import streamlit as st

datasets.disable_progress_bars()
st.set_page_config(page_title="LLM Training Explorer", page_icon="🧠", layout="wide")

# The built pages, in pipeline order. The home page draws its picture from this list.
PIPELINE = [
    ("pages/pretraining.py", "Pretraining", ":material/school:",
     "Train a tiny GPT (next token) or BERT (masked token) on a corpus and watch the loss fall and the text improve."),
]


def home():
    st.title("LLM Training Explorer")
    st.markdown("How a large language model is made, one stage at a time, with a tiny model **trained live** "
                "on this computer's CPU at every stage. Nothing is pre-recorded: the curves you see are "
                "being computed as you watch.")
    dot = ["digraph { rankdir=LR; bgcolor=transparent; node [shape=box style=\"rounded,filled\" "
           "fillcolor=\"#eef3fb\" color=\"#4a78c2\" fontname=Helvetica];"]
    names = [title for _, title, _, _ in PIPELINE]
    dot += [f'"{n}";' for n in names]
    dot += [f'"{a}" -> "{b}";' for a, b in zip(names, names[1:])]
    st.graphviz_chart("\n".join(dot + ["}"]))
    for path, title, icon, blurb in PIPELINE:
        with st.container(border=True):
            st.page_link(path, label=title, icon=icon)
            st.caption(blurb)


pages = [st.Page(home, title="Home", icon=":material/home:", default=True)]
pages += [st.Page(path, title=title, icon=icon) for path, title, icon, _ in PIPELINE]
st.navigation(pages).run()
