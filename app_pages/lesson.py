"""The lesson a visitor follows, in the sidebar: its steps, each with its link into a page, ticked
as the visitor's own runs pass their checks (engine/lessons.py). Opened by a link, `?lesson=name`;
the lesson stays with the visitor from page to page."""
from __future__ import annotations

import streamlit as st

from app_pages import ui
from engine import lessons
from engine.core.config import UserError

# The kinds of job each page runs (Job.stage): a step checks the jobs of its page, or of its `stage`.
PAGE_STAGES = {"pretraining": ("pretrain",), "data": ("data",), "sft": ("sft",), "rlhf": ("rlhf", "reward"),
               "cai": ("cai",), "attention": ("attention",), "scaling": ("scaling",), "carbon": ("carbon",)}


def current() -> str:
    """The lesson this visitor follows ("" for none): from the link, kept for the session and in the URL."""
    if "lesson" in st.query_params:
        st.session_state["_lesson"] = st.query_params["lesson"]
    name = st.session_state.get("_lesson", "")
    if name and st.query_params.get("lesson") != name:
        st.query_params["lesson"] = name
    return name


def my_finished_jobs() -> list[dict]:
    """This visitor's finished jobs on every page (a replay counts: it is their run too), as the checks
    read them. A finished job's records no longer change, so they are read in place, not copied as a
    live job's snapshot is: the sidebar does this on every rerun of every page."""
    jobs = (ui.runner().get(i) for i in ui.visitors().all_jobs(ui.visitor_id()))
    return [{"status": j.status, "message": j.message, "records": j.records, "summary": j.summary,
             "stage": j.stage, "config": j.config}
            for j in jobs if j is not None and not j.active and j.config is not None]


def step_state(step: lessons.Step, runs: list[dict]) -> tuple[bool, bool]:
    """(passed by any of the visitor's runs, the newest such run failed its check)."""
    stages = (step.stage,) if step.stage else PAGE_STAGES.get(step.page, ())
    mine = [r for r in runs if r["stage"] in stages and lessons.fits(step, r["config"])]
    passed = any(lessons.passes(step.check, r) for r in mine)
    return passed, bool(mine) and not passed


def step_params(lesson: str, i: int, step: lessons.Step) -> dict:
    """The step's settings, with the visitor's token and the lesson kept, and `_link` naming the step
    so the page applies its settings even when this session has opened that page before."""
    return {**step.params, "v": ui.visitor_id(), "lesson": lesson, "_link": f"{lesson}-{i}"}


def sidebar() -> None:
    name = current()
    if not name:
        return
    try:
        lesson = lessons.load(name)
    except UserError as e:
        st.sidebar.error(str(e), icon=":material/error:")
        return
    runs = my_finished_jobs()
    with st.sidebar.container(border=True):
        st.markdown(f"**Lesson: {ui.plain(lesson.title)}**")
        if lesson.about:
            st.caption(lesson.about)
        done = 0
        for i, step in enumerate(lesson.steps, 1):
            passed, failed = step_state(step, runs)
            done += passed
            mark = ":material/check_circle:" if passed else ":material/radio_button_unchecked:"
            st.markdown(f"{mark} **{i}.** {ui.plain(step.say)}")
            st.page_link(f"app_pages/{step.page}.py", label=f"Open step {i}", icon=":material/arrow_forward:",
                         query_params=step_params(name, i, step))
            if failed and step.hint:
                st.caption(f":material/tips_and_updates: {step.hint}")
        st.progress(done / len(lesson.steps), text=f"{done} of {len(lesson.steps)} steps done")
