"""The whole pipeline on one screen: your run tree, and one prompt answered by every stage's model."""
import html

import streamlit as st

from app_pages import ui
from engine import pipeline as lineage
from engine.core.config import UserError
from engine.pipeline import CompareConfig
from engine.text.world import World

P = "pl"
COLORS = {"pretrain": "#eef3fb", "sft": "#fdf3e6", "rlhf": "#f3eefb", "cai": "#eefbf3"}
TITLES = {"pretrain": "Pretrained base", "sft": "SFT", "rlhf": "RLHF", "cai": "Constitutional AI"}
ADDED = {"pretrain": "has learned the language: it continues your text", "sft": "has learned to answer",
         "rlhf": "answers as its reward model prefers", "cai": "answers by the written principles"}


def name(r) -> str:
    """Baked runs by their folder (sft-base, sft-helpful-only), the visitor's by their run name."""
    return f"{r.path.name} (baked)" if r.baked else r.name


def label(r) -> str:
    s = r.summary
    score = (f"{ui.label('eval_loss')} {s['eval_loss']:.2f}" if "eval_loss" in s else
             f"{ui.label('eval_accuracy')} {s['eval_accuracy']:.0%}" if "eval_accuracy" in s else
             f"{ui.label('gold_reward')} {s['gold_reward']:.2f}" if "gold_reward" in s else "")
    text = "\\n".join(x for x in (TITLES[r.stage], name(r), score) if x)
    return text.replace('"', "'")


def tree_dot(known, line) -> str:
    on_line = {r.path.name for r in line}
    out = ["digraph { rankdir=LR; bgcolor=transparent; nodesep=0.25;",
           'node [shape=box style="rounded,filled" fontname=Helvetica fontsize=11];']
    for r in known:
        width = 2.5 if r.path.name in on_line else 1
        out.append(f'"{r.path.name}" [label="{label(r)}" fillcolor="{COLORS[r.stage]}" penwidth={width}];')
        if r.parent in {k.path.name for k in known}:
            out.append(f'"{r.parent}" -> "{r.path.name}" [penwidth={width}];')
    return "\n".join(out + ["}"])


st.title("Your pipeline")
st.markdown("One question put to every model along a line of your run tree: what each stage of training added. "
            "The baked runs that ship with the app stand in for the stages you have not trained yet.")

ui.init_config(CompareConfig, P)
known = lineage.tree(ui.visitor_id(), also=ui.my_results())
ends = {r.path.name: r for r in lineage.leaves(known)}
if st.session_state[f"{P}.end"] not in ends:   # empty, or a run from another visitor's link
    st.session_state[f"{P}.end"] = next(iter(ends))
st.text_input("Prompt", key=f"{P}.prompt", max_chars=200, help=ui.widget_help(CompareConfig, "prompt"))
# One question per kind the stages differ on: a fact (SFT answers it), and red-team requests from the
# constitutional AI page (a helpful-only model complies; a CAI-tuned one should not).
who = World(0).people[0].name
examples = [f"Tell me about {who}.", f"Where does {who} live?"] + [p.text for p in lineage.red_team_examples()]
st.pills("Examples", examples, key=f"{P}_example", label_visibility="collapsed",
         on_change=lambda: st.session_state.update({f"{P}.prompt": st.session_state[f"{P}_example"] or
                                                    st.session_state[f"{P}.prompt"]}))
answers = st.container()   # the payoff: filled once the line and decoding are read below
st.caption("A base model has no chat template: it continues your text as if it were a story, up to the end of the "
           "line. Tuned models read it as a user turn and answer after `<|assistant|>`. Answers are the model's "
           "own; nothing is filtered or corrected.")

st.subheader("Your run tree")
st.markdown("Every model you trained here, and the one it was tuned from: a **pretrained base** learns the "
            "language, **SFT** teaches it to answer, **RLHF** and **constitutional AI** shape which answers it "
            "prefers. Pick the line whose models answer above.")
st.selectbox("Line through the tree (ending at)", list(ends), key=f"{P}.end",
             format_func=lambda n: f"{TITLES[ends[n].stage]}: {name(ends[n])}")
with ui.advanced("decoding"):
    c1, c2 = st.columns(2)
    c1.radio("Decoding", (True, False), key=f"{P}.greedy", horizontal=True,
             format_func=lambda g: "greedy" if g else "sampled", help=ui.widget_help(CompareConfig, "greedy"))
    c2.number_input("Seed", 0, 2**31 - 1, key=f"{P}.seed", disabled=st.session_state[f"{P}.greedy"],
                    help=ui.widget_help(CompareConfig, "seed"))
cfg: CompareConfig = ui.read_config(CompareConfig, P)
line = lineage.chain(ends[cfg.end], known)
st.graphviz_chart(tree_dot(known, line))
ui.takeaway("Bold: the line whose models answer above. Each box is a saved model with its score on its own "
            "stage's validation data (stories for the base, instructions and their answers for SFT), so the numbers "
            "are not comparable across stages. Train on the Pretraining, SFT, RLHF or Constitutional AI pages and "
            "your runs join the tree.")

with answers:
    cols = st.columns(len(line))
    for col, r in zip(cols, line):
        with col.container(border=True):
            st.markdown(f"**{TITLES[r.stage]}**  \n`{name(r)}`")
            st.caption(ADDED[r.stage])
            try:
                text = lineage.respond(r, cfg.prompt, greedy=cfg.greedy, seed=cfg.seed)
                st.markdown(f"<div style='font-family:monospace;white-space:pre-wrap'>{html.escape(text) or '∅'}</div>",
                            unsafe_allow_html=True)
            except UserError as e:
                st.info(str(e), icon=":material/edit:")
