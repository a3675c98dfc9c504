"""The room: every run finished on this server, for one stage at a time, as one experiment. Thirty
learners each picking a learning rate draw the room's learning-rate curve. For instructors: behind
the key in LLMX_ROOM_KEY. Anonymous: settings and final metrics only (engine/core/results.py)."""
import hmac
import math
import os

import plotly.graph_objects as go
import streamlit as st

from app_pages import ui
from engine import lessons
from engine.core.config import UserError
from engine.core.results import RESULTS

# Per stage: the page it belongs to, and the most instructive pair to open on (setting, metric).
STAGES = {"pretrain": ("Pretraining", "lr", "eval_loss"), "data": ("Data", "steps", "eval_loss/cleaned"),
          "sft": ("Instruction tuning (SFT)", "steps", "eval_accuracy"),
          "reward": ("RLHF: reward model", "n_pairs", "eval_accuracy"),
          "rlhf": ("RLHF: policy", "kl_coef", "eval_gold_reward"),
          "cai": ("Constitutional AI", "sl_steps", "violation_rate/after RLAIF"),
          "attention": ("Attention: induction heads", "lr", "induction_score"),
          "scaling": ("Model scaling", "tokens", "eval_loss"), "carbon": ("Carbon footprint", "steps", "seconds")}
LOG_SETTINGS = ("lr", "rm_lr", "sl_lr", "dpo_lr", "kl_coef", "beta", "tokens", "n_pairs")

st.title("The room")
key = os.environ.get("LLMX_ROOM_KEY", "")
if not key:
    st.info("The room view is off on this server. To turn it on, start the app with an environment variable "
            "`LLMX_ROOM_KEY=<a key of your choice>`, then open this page as `/room?key=<that key>`. It shows "
            "every learner's finished runs, anonymously: settings and final metrics only.",
            icon=":material/lock:")
    st.stop()
given = st.query_params.get("key") or st.text_input("Instructor key", type="password")
if not hmac.compare_digest(given.encode(), key.encode()):
    if given:
        st.error("That is not this server's key.", icon=":material/error:")
    st.stop()
st.query_params["key"] = given

with st.expander("Lessons to hand out", icon=":material/school:"):
    st.caption("Each link opens a page with the lesson in the sidebar; its steps tick as the learner's own runs "
               "pass their checks. A lesson is a short TOML file in lessons/ (the format: engine/lessons.py).")
    for name in lessons.available():
        try:
            first = lessons.load(name)
            st.markdown(f"- [{ui.plain(first.title)}]({first.steps[0].page}?lesson={name}) "
                        f"`/{first.steps[0].page}?lesson={name}`")
        except UserError as e:   # a broken file: say which line, so its author can fix it
            st.error(str(e), icon=":material/error:")

counts = {s: len(RESULTS.rows(s)) for s in STAGES}
stage = st.segmented_control("Stage", list(STAGES), default="pretrain", key="room_stage", required=True,
                             format_func=lambda s: f"{STAGES[s][0]} ({counts[s]})")
page_name, default_x, default_y = STAGES[stage]


@st.fragment(run_every=2.0)
def room() -> None:
    """Redrawn every two seconds: runs appear as learners' jobs finish."""
    rows = RESULTS.rows(stage)
    st.metric("runs finished", len(rows))
    if not rows:
        st.caption(f"No {page_name} run has finished on this server yet.")
        return
    settings = sorted({k for r in rows for k, v in r["settings"].items() if isinstance(v, (int, float))})
    metrics = sorted({k for r in rows for k in r["metrics"]})
    a, b = st.columns(2)
    x = a.selectbox("Setting", settings, index=settings.index(default_x) if default_x in settings else 0,
                    key=f"room_x_{stage}")
    y = b.selectbox("Final metric", metrics, index=metrics.index(default_y) if default_y in metrics else 0,
                    format_func=ui.label, key=f"room_y_{stage}")
    points = [(r["settings"][x], r["metrics"][y]) for r in rows
              if isinstance(r["settings"].get(x), (int, float)) and y in r["metrics"]]
    if not points:
        st.caption("No run has both of these: pick another pair.")
        return
    xs, ys = zip(*points)
    log_x = x in LOG_SETTINGS and min(xs) > 0
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="markers", marker=dict(size=11, opacity=0.75)))
    fig.update_layout(title=f"{ui.label(y)} against {x}: {len(points)} runs", height=460,
                      margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(title=x, type="log" if log_x else "linear")
    fig.update_yaxes(title=ui.label(y))
    best = min(points, key=lambda p: p[1]) if y.endswith(("loss", "rate/after RLAIF")) else max(points, key=lambda p: p[1])
    spread = (max(ys) - min(ys)) if len(ys) > 1 else 0.0
    ui.plot(fig, notice=f"each point is one learner's finished run; the best {ui.label(y)} here came at {x} = "
                        f"{best[0]:g} ({best[1]:.3g}), and the runs spread over {spread:.3g}"
                        + (" (a log axis: settings an order of magnitude apart)" if log_x else "")
                        + ". These are the toy's numbers, for this room.", key=f"room_plot_{stage}")
    if not math.isfinite(spread):
        st.caption("Some runs diverged.")


room()
