"""Streamlit helpers every page shares: the job runner, URL-backed configs, job controls,
the live view and charts. Pages build a config, submit a job and draw it; nothing else."""
from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import re
import threading
import typing
import urllib.parse
import uuid
from pathlib import Path
from typing import Callable

import pandas  # first imported here: codecarbon imports it in job threads, and a half-imported
import plotly.graph_objects as go  # pandas there crashed a page's plotly (seen)
import streamlit as st

from app_pages.visitors import TOKEN, Visitors, new_token
from engine.core import limits, runs
from engine.core.config import StageConfig, UserError
from engine.core.jobs import Job, JobRunner, warm_up
from engine.core.ledger import LEDGER
from engine.core.ray_backend import backend_from_env

MAX_POINTS = 500  # a 10,000-point figure cost 34 ms and 242 KiB per refresh per tab


@st.cache_resource
def runner() -> JobRunner:
    """One runner for the whole process: every visitor's jobs share its slots and queue. They run
    in threads here, or on Ray when LLMX_RAY_ADDRESS says so (engine.core.ray_backend)."""
    return JobRunner(backend=backend_from_env())


# What the pages that train import: loaded in the background once the first page is drawn.
PRELOAD = ("torch", "transformers", "datasets", "engine.pretraining", "engine.sft", "engine.rlhf.recipe",
           "engine.cai.run", "engine.attention.heads", "engine.attention.induction", "engine.scaling.experiments",
           "engine.data.compare", "engine.data.quality", "engine.carbon.levers", "engine.pipeline")


@st.cache_resource
def preload() -> threading.Event:
    """Once per process, after the first page view has been drawn: import what training pages need
    (seconds), create the job runner (on Ray, its connection and warm workers), then pay codecarbon's
    hardware probe, in one background thread. A cold server draws its home page without waiting for
    torch, and the first Train waits for none of it. The event is set once the imports are done."""
    imported = threading.Event()

    def work():
        for name in PRELOAD:
            importlib.import_module(name)
        imported.set()
        runner()   # on Ray, connecting and starting the warm workers take seconds: not on Train
        warm_up()

    threading.Thread(target=work, name="preload", daemon=True).start()
    return imported


def preloaded() -> None:
    """Before a page that trains runs: wait until the preload has imported what it imports. The page
    imports the same packages, and two threads importing one package at once can each find the
    other's half done (an ImportError, seen under load)."""
    preload().wait()


def _gone(visitor: str) -> None:
    """The visitor's last tab has been closed for the grace period: free their slots; their energy
    stays in the app's totals, not as a visitor's."""
    runner().stop_owner(visitor)
    LEDGER.forget(visitor)


@st.cache_resource
def visitors() -> Visitors:
    return Visitors(on_gone=_gone)


class _Session:
    def __init__(self):
        self.id = uuid.uuid4().hex[:12]
        self.visitor: str | None = None


def _release(session: _Session) -> None:
    if session.visitor:
        visitors().detach(session.visitor, session.id)


@st.cache_resource(scope="session", on_release=_release)
def _session() -> _Session:
    return _Session()


def visitor_id() -> str:
    """This visitor's token (app_pages/visitors.py): from the URL's `v` when it carries a valid one,
    else new; written back to the URL on every page, so a reload or a second tab is the same visitor."""
    session = _session()
    if session.visitor is None:
        given = st.query_params.get("v", "")
        session.visitor = given if TOKEN.fullmatch(given) else new_token()
        visitors().attach(session.visitor, session.id)
    if st.query_params.get("v") != session.visitor:
        st.query_params["v"] = session.visitor
    return session.visitor


# --- configs that live in the URL ----------------------------------------------------------

def init_config(cls: type[StageConfig], prefix: str) -> None:
    """Seed the widget keys `prefix.field` once per session: from the URL if the page was
    opened by a link, else from the last values used here (widget state is dropped when a
    page is left), else the defaults. Bad link values are reported, not fatal."""
    store = f"_{prefix}_config"
    params = st.query_params.to_dict()
    if store not in st.session_state:
        cfg, problems = cls.from_params(params)
        st.session_state[store] = cfg.to_dict()
        for p in problems:
            st.toast(p, icon="⚠️")
    elif params.get("_link") and st.session_state.get(f"{store}_link") != params["_link"]:
        # A lesson step's link followed within the session (`_link` names it): its settings win over
        # the ones this session last used, once, so the learner's later edits stay theirs.
        given = {k: v for k, v in params.items() if k in st.session_state[store]}
        st.session_state[store] |= {k: getattr(cls.from_params(given)[0], k) for k in given}
        for k in given:
            st.session_state[f"{prefix}.{k}"] = st.session_state[store][k]
    st.session_state[f"{store}_link"] = params.get("_link")
    for name, value in st.session_state[store].items():
        st.session_state.setdefault(f"{prefix}.{name}", value)
    hide_controls(prefix)
    # The open page's settings, for the link popover (app.py clears the list on every run).
    st.session_state.setdefault("_link_fields", []).extend(f.name for f in dataclasses.fields(cls))


def hide_controls(prefix: str) -> None:
    """Instructor links (TensorFlow Playground's `_hide`): `?_hide=lr,steps` hides those controls
    of the page, which keep the link's values. Streamlit gives every keyed widget the class
    `st-key-<key>`, so one style rule per name hides it wherever the page draws it."""
    names = [n.strip() for n in st.query_params.get("_hide", "").split(",") if n.strip()]
    keys = [f"_{prefix}_preset" if n == "preset" else f"{prefix}.{n}" for n in names]
    if keys:
        st.html("<style>" + ",".join(f".st-key-{re.sub(r'[^A-Za-z0-9_-]', '-', k)}" for k in keys)
                + "{display:none !important}</style>")


def preset_picker(cls: type[StageConfig], prefix: str) -> None:
    """Quick demo / thorough: the config class's PRESETS (field overrides), applied to the
    widgets. Shows which preset the widgets match, or "custom" once a setting is changed."""
    presets: dict[str, dict] = cls.PRESETS
    key = f"_{prefix}_preset"

    def apply():
        for name, value in presets.get(st.session_state[key], {}).items():
            st.session_state[f"{prefix}.{name}"] = value

    st.session_state[key] = next((n for n, p in presets.items()
                                  if all(st.session_state.get(f"{prefix}.{k}") == v for k, v in p.items())), "custom")
    st.segmented_control("Preset", [*presets, "custom"], key=key, on_change=apply,
                         help=" · ".join(f"**{n}**: {d}" for n, d in cls.PRESET_NOTES.items())
                         + " · **custom**: your own settings.")


def read_config(cls: type[StageConfig], prefix: str) -> StageConfig:
    """The config the widgets now show; also written to the URL (merged, so a page with two
    configs keeps both) and kept for the session."""
    values = {f.name: st.session_state.get(f"{prefix}.{f.name}", f.default) for f in dataclasses.fields(cls)}
    cfg = cls(**values)
    st.session_state[f"_{prefix}_config"] = cfg.to_dict()
    st.query_params.update(cfg.to_params())
    return cfg


def widget_help(cls: type[StageConfig], name: str) -> str:
    return cls.meta(name).get("help", "")


def fit_widgets(cls: type[StageConfig], prefix: str) -> None:
    """A link may carry any value the config accepts; one its widget cannot show (outside the
    field's `shown` bounds, or between its `options`) is clamped or snapped to the nearest option,
    with a notice. Streamlit would reset it to the widget's minimum without a word, or raise."""
    for f in dataclasses.fields(cls):
        key, value = f"{prefix}.{f.name}", st.session_state.get(f"{prefix}.{f.name}")
        fixed = cls.fit(f.name, value)
        if fixed != value:
            st.session_state[key] = fixed
            st.toast(f"{f.name}={value:g} is not one this page offers: using {fixed:g}.", icon="⚠️")


def bounds(cls: type[StageConfig], name: str) -> tuple:
    """(min, max) of the field's widget: its `shown` bounds, else the range the engine accepts."""
    meta = cls.meta(name)
    return meta.get("shown", meta.get("range"))


def options(cls: type[StageConfig], name: str) -> tuple:
    """The values the field's select slider offers."""
    return cls.meta(name)["options"]


# --- jobs ------------------------------------------------------------------------------------

def jobs_of(slot: str) -> list[Job]:
    """The jobs this visitor last started in this slot (kept per visitor, so a page switch, a
    reload or a second tab finds them)."""
    return [j for j in (runner().get(i) for i in visitors().jobs(visitor_id(), slot)) if j is not None]


def my_results() -> list[str]:
    """Folder names of the runs this visitor's jobs gave, on every page: a job replayed from the cache
    gives the run another visitor trained first, which is this visitor's result all the same."""
    jobs = (runner().get(i) for i in visitors().all_jobs(visitor_id()))
    return [Path(j.result).name for j in jobs if j is not None and j.result]


def my_runs(stage: str | None = None) -> list[runs.RunInfo]:
    """The baked runs, this visitor's, and those their jobs got from the cache (runs.list_runs)."""
    return runs.list_runs(stage, owner=visitor_id(), also=my_results())


def start_jobs(slot: str, submissions: Callable[[], list[dict]]) -> None:
    """on_click callback: `submissions()` returns runner.submit kwargs. User errors are kept
    for the page to show; already-running jobs of this slot are stopped first."""
    st.session_state.pop(f"_error_{slot}", None)
    for j in jobs_of(slot):
        j.stop()
    jobs = []
    try:
        for kw in submissions():
            jobs.append(runner().submit(owner=visitor_id(), **kw))
    except UserError as e:
        for j in jobs:  # all or nothing: a half-started pair would run unseen
            j.stop()
        st.session_state[f"_error_{slot}"] = str(e)
        return
    visitors().set_jobs(visitor_id(), slot, [j.id for j in jobs])


def controls(slot: str, start: Callable[[], list[dict]], label: str = "Train") -> list[Job]:
    """Train / Pause-Resume / Stop / Reset, drawn disabled when they cannot act. Starts the jobs
    here when a one-click experiment asked for them in the run before."""
    if st.session_state.pop(f"_autostart_{slot}", False):
        start_jobs(slot, start)
    jobs = jobs_of(slot)
    active = [j for j in jobs if j.active]
    paused = bool(active) and all(j.status == "paused" for j in active)
    c = st.columns([max(2, len(label) // 5), 2, 2, 2, 6])   # a long label keeps its words
    c[0].button(label, type="primary", disabled=bool(active), on_click=start_jobs, args=(slot, start),
                key=f"{slot}_start", icon=":material/play_arrow:", width="stretch")
    c[1].button("Resume" if paused else "Pause", disabled=not active, key=f"{slot}_pause",
                on_click=lambda: [j.resume() if paused else j.pause() for j in active],
                icon=":material/pause:", width="stretch")
    c[2].button("Stop", disabled=not active, key=f"{slot}_stop", on_click=lambda: [j.stop() for j in active],
                icon=":material/stop:", width="stretch")
    c[3].button("Reset", disabled=not jobs, key=f"{slot}_reset", on_click=_reset, args=(slot,),
                icon=":material/restart_alt:", width="stretch")
    if err := st.session_state.get(f"_error_{slot}"):
        st.error(err, icon=":material/error:")
    return jobs


def _reset(slot: str) -> None:
    for j in jobs_of(slot):
        j.stop()
    visitors().set_jobs(visitor_id(), slot, [])
    st.session_state.pop(f"_error_{slot}", None)


def live(slot: str, draw: Callable[[list[dict]], None], every: float = 0.5, downloads: bool = True) -> None:
    """Redraw `draw(snapshots)` every `every` seconds while this slot's jobs run; once they end, offer
    their metrics as a CSV (with `downloads`: one view of a slot has them, a second view elsewhere on
    the page does not) and rerun the whole page once so post-training sections appear (also on a
    page drawn after a reload, while the jobs ran)."""
    active = any(j.active for j in jobs_of(slot))

    @st.fragment(run_every=every if active else None)
    def view():
        jobs = jobs_of(slot)
        if not jobs:
            return
        snaps = [j.snapshot() for j in jobs]
        draw(snaps)
        if not any(j.active for j in jobs):
            if downloads:
                download_metrics(snaps, slot)
            if active:   # they were running when the page was drawn: draw it again, finished
                st.rerun()

    view()


def status_line(snap: dict) -> None:
    """Queue place, progress with ETA, or how the run ended."""
    s = snap["status"]
    name = snap["label"]
    if s == "queued":
        st.info(f"{name}: waiting for a free slot, number {snap['queue_position']} in the queue "
                f"(about {snap['queue_eta']:.0f} s).", icon=":material/hourglass_top:")
        return
    frac, eta = snap["progress"], snap["eta"]
    if (prep := snap["preparing"]) and s == "running":
        left = f" · about {prep['eta']:.0f} s left" if prep["eta"] is not None else ""
        st.progress(min(1.0, prep["done"] / max(prep["total"], 1e-9)),
                    text=f"{name}: {prep['what']}, {prep['done']:.0f} of {prep['total']:.0f}{left}")
    elif s in ("running", "paused"):
        left = f"about {eta:.0f} s left" if eta is not None else (snap["message"] or "starting")
        st.progress(frac, text=f"{name}: {'paused · ' if s == 'paused' else ''}{frac:.0%} · {left}")
    elif s == "failed":
        st.error(f"{name}: {snap['message']}", icon=":material/error:")
    elif s == "stopped":
        why = snap["message"].rstrip(".") if snap.get("paused_out") else "stopped by you"
        st.warning(f"{name}: {why}{'; the model so far was saved' if snap['result'] else ''}.",
                   icon=":material/stop_circle:")
    else:
        st.success(f"{name}: finished. {snap['message']}".strip(), icon=":material/check_circle:")
    if fp := snap.get("footprint"):
        footprint_line(fp)


def footprint_line(fp) -> None:
    """One line: what this run cost, and how codecarbon knew (see the Carbon page)."""
    if not fp.available:
        st.caption(f"Energy: not available here ({fp.method}).")
        return
    st.caption(f"Energy: {fp.energy_kwh * 1000:.3f} Wh, {fp.emissions_g:.3f} g CO2e in {fp.duration_s:.0f} s "
               f"({fp.kind}; the ? says how, the Carbon page for totals)", help=fp.method)


# --- charts ----------------------------------------------------------------------------------

def downsample(xs: list, ys: list, n: int = MAX_POINTS) -> tuple[list, list]:
    if len(xs) <= n:
        return xs, ys
    stride = math.ceil(len(xs) / n)
    return xs[::stride] + [xs[-1]], ys[::stride] + [ys[-1]]


def smooth(ys: list[float], alpha: float = 0.9) -> list[float]:
    """Exponential moving average, bias-corrected (TensorBoard's smoothing)."""
    out, m = [], 0.0
    for i, y in enumerate(ys, 1):
        m = alpha * m + (1 - alpha) * y
        out.append(m / (1 - alpha ** i))
    return out


def curve_chart(series: list[dict], title: str, *, notice: str, ytitle: str = "loss",
                hlines: typing.Sequence[tuple] = (), key: str | None = None, height: int = 360, xtitle: str = "step",
                log_x: bool = False, log_y: bool = False, x_power: bool = False) -> None:
    """series: dicts with name, x, y and optional color, dash, markers (or mode: "lines",
    "markers", "lines+markers"), symbol, size, legend. hlines: (y, label), the scale anchors (a
    uniform guess, the base model, a published figure). `notice`: what to notice (see `plot`)."""
    fig = go.Figure()
    for s in series:
        x, y = downsample(list(s["x"]), list(s["y"]))
        fig.add_trace(go.Scatter(x=x, y=y, name=s["name"], showlegend=s.get("legend", True),
                                 mode=s.get("mode", "lines+markers" if s.get("markers") else "lines"),
                                 line=dict(dash=s.get("dash"), color=s.get("color")),
                                 marker=dict(symbol=s.get("symbol", "circle"), size=s.get("size", 6),
                                             color=s.get("color"))))
    xs = [v for s in series for v in s["x"]]
    for y, label in hlines:
        if log_y and xs:  # on a log axis plotly places annotations in log units: draw a trace instead
            fig.add_trace(go.Scatter(x=[min(xs), max(xs)], y=[y, y], name=label, mode="lines",
                                     line=dict(dash="dot", color="gray")))
        else:
            fig.add_hline(y=y, line_dash="dot", line_color="gray", annotation_text=label,
                          annotation_position="top right")
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.28))   # below the x axis's title
    fig.update_xaxes(title=xtitle, type="log" if log_x else "linear", exponentformat="power" if x_power else "SI")
    fig.update_yaxes(title=ytitle, type="log" if log_y else "linear")
    plot(fig, notice=notice, key=key)


def plot(fig: go.Figure, *, notice: str, **kwargs) -> None:
    """st.plotly_chart, with larger text and taller charts in projector mode, and under it the
    one sentence that says what to notice, with its scale anchor ("well below ln V = 4.6, a
    uniform guess") and, when a number is the toy's, that it is the toy's. Every chart has one."""
    if projector():
        fig.update_layout(font=dict(size=20), height=int((fig.layout.height or 400) * 1.3),
                          title_font=dict(size=24))
    st.plotly_chart(fig, **{"width": "stretch", **kwargs})
    takeaway(notice)


def takeaway(text: str) -> None:
    """What to notice in the chart (or table) just above."""
    st.caption(f":material/lightbulb: **What to notice:** {text}")


# --- the first minute: few controls in view, the rest under Advanced; one-click experiments ------

def advanced(what: str = "settings") -> typing.ContextManager:
    """The controls a first visit does not need (warmup, seed, batch, bf16, evaluation cadence, the
    time limit), folded away: `with ui.advanced(): ...`."""
    return st.expander(f"Advanced {what}", icon=":material/tune:")


def one_click(label: str, prefix: str, slot: str, settings: dict, help: str, key: str | None = None) -> None:
    """A headline effect in one click ("Watch reward hacking"): set the page's widgets to
    `settings` and start the slot's jobs with them. The jobs start in the next run, from
    `controls`, so they are built from the new settings, not the ones on screen at the click."""
    def click():
        for name, value in settings.items():
            st.session_state[f"{prefix}.{name}"] = value
        st.session_state[f"_autostart_{slot}"] = True

    st.button(label, on_click=click, help=help, key=key or f"{slot}_one_click_{label}", icon=":material/bolt:",
              disabled=any(j.active for j in jobs_of(slot)))


# Plain names on screen for the metrics the engine logs; the name TRL and transformers log goes in
# the help text, so what people see here matches what they will see in real tools.
METRICS = {
    "loss": "training loss", "eval_loss": "validation loss", "eval_perplexity": "validation perplexity",
    "eval_accuracy": "validation accuracy", "eval_mean_token_accuracy": "validation token accuracy",
    "mean_token_accuracy": "training token accuracy", "base_eval_loss": "validation loss on the base model's text",
    "rewards/chosen": "implicit reward, chosen", "rewards/rejected": "implicit reward, rejected",
    "rewards/margins": "reward margin", "rewards/accuracies": "preference accuracy",
    "eval_rewards/margins": "validation reward margin", "eval_rewards/accuracies": "validation preference accuracy",
    "objective/kl": "KL from the SFT model", "objective/scores": "reward-model score",
    "objective/rlhf_reward": "reward minus KL penalty", "objective/entropy": "entropy of the answers",
    "policy/clipfrac_avg": "share of clipped tokens", "policy/approxkl_avg": "KL per update",
    "gold_reward": "true (gold) reward", "eval_gold_reward": "validation true (gold) reward",
    "eval_scores": "validation reward-model score", "val_loss": "validation loss", "val_accuracy": "validation accuracy",
}


def label(key: str) -> str:
    """The plain name of a logged metric."""
    return METRICS.get(key, key.replace("_", " "))


def metric_help(key: str, more: str = "") -> str:
    """Help text that names the metric as TRL / transformers log it."""
    return f"{more} Logged as `{key}`, as TRL and transformers name it.".strip()


def plain(text: str) -> str:
    """Text a person or a model wrote, shown literally inside st.markdown: markdown's and
    LaTeX's special characters are escaped, and markdown renders no raw HTML."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$])", r"\\\1", str(text))


# --- uploads ----------------------------------------------------------------------------------

def jsonl_upload(up, parse: Callable[[bytes], tuple[list, list[str]]], noun: str) -> tuple[list, str]:
    """Read an uploaded JSON Lines file with `parse` (-> items, problems by line) and say what
    came of it: how many `noun` were read, which lines were skipped, or why none were.
    Returns the items and the error ("" when the file was usable)."""
    try:
        if up.size > limits.MAX_UPLOAD_BYTES:
            raise UserError(f"it is {up.size / 1e6:.1f} MB; the limit is {limits.MAX_UPLOAD_BYTES / 1e6:.0f} MB.")
        items, bad = parse(up.getvalue())
    except UserError as e:
        st.error(f"{up.name}: {e}", icon=":material/error:")
        return [], str(e)
    st.success(f"{up.name}: {len(items)} {noun}.", icon=":material/upload_file:")
    if bad:
        st.warning(f"{len(bad)} lines skipped: " + "; ".join(bad[:8]) + (" …" if len(bad) > 8 else ""),
                   icon=":material/warning:")
    return items, ""


# --- the same experiment at real scale ----------------------------------------------------------------

def real_scale(cfg: StageConfig) -> None:
    """The page's current settings as the command that reruns them here and as a script for the
    standard tool at real scale (engine/realscale.py), with what has no counterpart there."""
    from engine import realscale  # its scripts are text: cheap, but only the pages that train need it

    rs = realscale.for_page(cfg)
    with st.expander("The same experiment at real scale", icon=":material/rocket_launch:"):
        st.markdown("**Here, from the command line** (the settings you changed, the rest default):")
        st.code(rs.command, language="bash", wrap_lines=True)
        if rs.script:
            st.markdown(f"**At real scale, with {rs.tool}:** the same settings under the tool's names. Change "
                        "`MODEL` and `DATA` at the top; everything else is this page's.")
            st.code(rs.script, language="python")
        st.caption("No counterpart in the tool: " + "; ".join(rs.unmapped))


# --- runs -------------------------------------------------------------------------------------

@st.cache_resource(max_entries=6)
def load_run(path: str):
    """A saved run's model, tokenizer and info, kept for the next rerun (the few most recent)."""
    return runs.load_run(path)


def download_metrics(snaps: list[dict], key: str) -> None:
    """Every record of these jobs as one CSV (a "job" column tells them apart), as TensorBoard and
    TRL's loggers export them: for a spreadsheet or pandas."""
    rows = [{"job": s["label"], **r} for s in snaps for r in s["records"]]
    if rows:
        st.download_button("Download metrics (CSV)", data=pandas.DataFrame(rows).to_csv(index=False),
                           file_name=f"{key}-metrics.csv", mime="text/csv", key=f"{key}_csv", on_click="ignore",
                           icon=":material/table:")


def download_run(path: str, key: str) -> None:
    st.download_button("Download model (zip)", data=functools.partial(runs.zip_run, path),
                       file_name=f"{path.rstrip('/').split('/')[-1]}.zip", mime="application/zip",
                       key=key, on_click="ignore", icon=":material/download:")


# --- workshop tools: a link to this experiment, projector mode -----------------------------------

def projector() -> bool:
    return bool(st.session_state.get("_projector"))


def workshop_tools() -> None:
    """Sidebar tools for instructors: projector mode (toggle or `?_projector=1`) and a link that
    reopens the page with its settings, seed included, optionally hiding chosen controls."""
    if "_projector" not in st.session_state:
        st.session_state["_projector"] = st.query_params.get("_projector") == "1"
    with st.sidebar:
        if notice := runner().backend.notice:   # Ray asked for but not reachable, or lost since
            st.warning(notice, icon=":material/cloud_off:")
        st.toggle("Projector mode", key="_projector", help="larger text and charts for a room; in a link: `_projector=1`")
        if projector():
            st.query_params["_projector"] = "1"
            st.html("<style>html{font-size:21px} .stMainBlockContainer{max-width:100%}</style>")
        else:
            st.query_params.pop("_projector", None)
        fields = list(dict.fromkeys(st.session_state.get("_link_fields", [])))
        if not fields:
            return
        with st.popover("Link to this experiment", icon=":material/link:", width="stretch"):
            hidden = [n for n in st.query_params.get("_hide", "").split(",") if n]
            hide = st.multiselect("Hide these controls for the people who open it", ["preset", *fields],
                                  default=[n for n in hidden if n in ("preset", *fields)], key="_link_hide",
                                  help="for guided exercises: hidden controls keep the link's values")
            # Not the visitor's own token (`v`): whoever opens the link is someone new.
            params = {k: v for k, v in st.query_params.to_dict().items() if k not in ("_hide", "v")}
            if hide:
                params["_hide"] = ",".join(hide)
            base = (st.context.url or "").split("?")[0]
            st.code(f"{base}?{urllib.parse.urlencode(params, safe=',')}", language=None, wrap_lines=True)
            st.caption("Copy it with the icon at the code's top right. It holds every setting of this page, "
                       "seed included: the same link trains the same curve.")
