"""Carbon footprint: what this app's own training used, measured, beside what real training runs used;
then what cuts it, measured here (the recorded quick demo first, one Run); then the calculator and the
published footprints it reproduces."""
import datetime
import os
import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_pages import ui
from engine import demos
from engine.carbon import calculator, levers
from engine.carbon.levers import CarbonConfig
from engine.core import energy, ledger
from engine.core.energy import CarbonInputError
from engine.core.ledger import LEDGER
from engine.core.report import Task

P = "cc"  # widget-key prefix and job slot of this page
ui.init_config(CarbonConfig, P)
hlp = lambda name: ui.widget_help(CarbonConfig, name)  # noqa: E731
GRID = {r.iso: r for r in energy.grid_intensities()}
INPUTS = {  # the calculator's labels for the input names CarbonInputError messages start with
    "count": "Devices", "hours": "Wall-clock hours", "device_hours": "Device-hours", "watts": "Power per device",
    "pue": "PUE", "grid_g_per_kwh": "Grid intensity", "n_params": "Parameters N", "n_tokens": "Training tokens D",
    "mfu": "MFU", "peak_flops": "Peak FLOP/s"}
# The ledger books each job under the stage its page submitted it as: shown by the page's name.
PAGE_NAMES = {"data": "Data", "pretrain": "Pretraining", "sft": "Instruction tuning (SFT)",
              "reward": "RLHF reward model", "rlhf": "RLHF", "cai": "Constitutional AI", "attention": "Attention", "scaling": "Model scaling",
              "carbon": "Carbon footprint", "other": "other"}
DEMO = demos.load(levers.DEMO)
COLORS = dict(zip(levers.LEVERS, ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#d62728")))
DASHES = {"bf16": "dash", "ckpt": "dot"}   # both retrace the baseline's curve: keep it visible


def num(x: float) -> str:
    """Three significant figures, thousands separated, never in e-notation."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def page_name(stage: str) -> str:
    return PAGE_NAMES.get(stage, stage)


def sum_totals(parts) -> ledger.Totals:
    out = ledger.Totals()
    for t in parts:
        out.merge(t)
    return out


def grid_label(iso: str) -> str:
    return "Custom intensity" if iso == "custom" else f"{GRID[iso].name} ({iso}): {GRID[iso].g_per_kwh:.0f} g/kWh"


def fp_kwh(fp) -> float | None:
    """A footprint's energy: a Footprint from a live job, or its dict from a recorded demo."""
    return fp.get("energy_kwh") if isinstance(fp, dict) else fp.energy_kwh


def fp_kind(fp) -> str:
    return fp.get("kind", "") if isinstance(fp, dict) else fp.kind


def times(x: float) -> str:
    """A large ratio in words: "67 billion"."""
    for name, size in (("trillion", 1e12), ("billion", 1e9), ("million", 1e6), ("thousand", 1e3)):
        if x >= size:
            return f"{x / size:,.0f} {name}"
    return f"{x:,.0f}"


def wh(kwh: float) -> str:
    """An energy at its own scale: Wh for the toy's runs, kWh to GWh for real ones (MWh up to 10 GWh, so
    GPT-3 reads as its paper gives it, 1,287 MWh)."""
    for unit, size, above in (("GWh", 1e6, 1e7), ("MWh", 1e3, 1e3), ("kWh", 1.0, 1.0)):
        if kwh >= above:
            return f"{num(kwh / size)} {unit}"
    return f"{num(kwh * 1000)} Wh"


st.title("Carbon footprint")
st.markdown(
    "Training turns electricity into a lower loss. Its footprint is **energy drawn by the hardware** × **the data "
    "centre's overhead (PUE)** × **the carbon intensity of the grid**. Below: what this app's own training used, "
    "measured, beside what real training runs used, as published; then what cuts it, measured here.")

owner = ui.visitor_id()
# Totals from the per-page figures, so the numbers and the charts below agree even if a job ends meanwhile.
pages_mine, pages_all = LEDGER.by_page(owner), LEDGER.by_page()
mine, everyone = sum_totals(pages_mine.values()), sum_totals(pages_all.values())
demo_levers = (DEMO or {}).get("info", {}).get("levers", [])

# --- the payoff: from a run here to GPT-3, on one scale ----------------------------------------------------
left, right = st.columns([3, 2], gap="medium")
with left:
    bars = []   # (label, kWh, here?)
    if demo_levers and fp_kwh(demo_levers[0]["footprint"]):
        bars.append((f"a {DEMO['stage_config']['steps']}-step run here", fp_kwh(demo_levers[0]["footprint"]), True))
    if mine.jobs and mine.energy_kwh:
        bars.append((f"your {mine.jobs} jobs here", mine.energy_kwh, True))
    if everyone.jobs and everyone.energy_kwh and everyone.jobs != mine.jobs:
        bars.append((f"this app's {everyone.jobs} jobs", everyone.energy_kwh, True))
    for key, pub in calculator.PRESETS.items():   # short names: the sources are in the notice and below
        name = pub.name.split(" (")[0]
        if pub.published_kwh is not None:
            bars.append((name, pub.published_kwh, False))
        else:
            bars.append((f"{name}*", calculator.compare(pub).estimate.kwh, False))
    fig = go.Figure(go.Bar(x=[b[1] for b in bars], y=[b[0] for b in bars], orientation="h",
                           text=[wh(b[1]) for b in bars], textposition="auto",
                           marker_color=["#5a8f3c" if b[2] else "#3b6fd4" for b in bars]))
    fig.update_layout(title="Training energy: a run here and real models", height=380,
                      margin=dict(l=10, r=10, t=40, b=10), yaxis=dict(autorange="reversed"))
    fig.update_xaxes(type="log", title="kWh, log scale", exponentformat="power")
    here = next((b for b in bars if b[2]), None)
    gpt3 = calculator.PRESETS["gpt-3"]
    ui.plot(fig, key=f"{P}_scale", notice=(
        (f"A training run here uses about {wh(here[1])} (codecarbon's figure for this CPU); GPT-3's training used "
         f"{wh(gpt3.published_kwh)} ({gpt3.source.split(',')[0]}), about {times(gpt3.published_kwh / here[1])} "
         "times more: each grid line is ten times the one before. " if here else
         f"GPT-3's training used {wh(gpt3.published_kwh)} ({gpt3.source.split(',')[0]}). ")
        + "Blue: each paper's own published figure (BERT-base: Strubell et al. 2019; BLOOM: Luccioni et al. 2023; "
          "* Llama 2 and 3: Meta's GPU-hours × the GPU's power, as Meta publishes no kWh). Green: measured here."))
with right:
    if not (latest := LEDGER.recent(n=1)):
        st.markdown("**Measured here.** Nothing has been trained since this server started: train on any page, or "
                    "run the experiment below, and every job's energy and emissions are added here.")
        if demo_levers:
            ratio = {d["lever"]: (fp_kwh(d["footprint"]) or 0) / (fp_kwh(demo_levers[0]["footprint"]) or 1)
                     for d in demo_levers}
            st.markdown("**The levers, as recorded below** (energy against the fp32 baseline): "
                        + ", ".join(f"{levers.LEVERS[k]} **{ratio[k]:.2f}×**" for k in ("bf16", "ckpt", "small")
                                    if k in ratio) + ". Press **Run** below to measure it again.")
    else:
        for title, t in (("Your session", mine), ("This app, since the server started", everyone)):
            st.markdown(f"**{title}**")
            m = st.columns(2)
            m[0].metric("energy", f"{num(t.energy_kwh * 1000)} Wh")
            m[1].metric("emissions", f"{num(t.emissions_g)} g CO2e")
            m = st.columns(2)
            m[0].metric("training jobs", t.jobs)
            m[1].metric("training time", f"{t.duration_s:,.0f} s")
        st.caption(f"The latest job's figure is {latest[0].footprint.kind}: how, under *Measured here* below.")

# --- what cuts it, measured: the recorded quick demo first, then one Run -----------------------------------
st.header("What cuts the footprint, measured")
st.markdown(
    f"The same tiny GPT (size {CarbonConfig().levers()[0][1].size}, on the Pretraining page's built-in stories) "
    "trained on "
    "this CPU under each lever, one after another in a single job so they do not slow each other down: the **fp32 "
    "baseline**; **bf16 autocast** (matrix products in bfloat16); **gradient checkpointing** (keep fewer "
    f"activations, recompute them in the backward pass); a **smaller model** (size {levers.SMALL}) for the same "
    f"steps, and with a schedule {levers.SMALL_LOSS_STEPS} times as long until it reaches the baseline's "
    "validation loss. Cleaner grids and a better PUE need other data centres: try them in the calculator below.")
result_area = st.container()   # the recorded demo, or this visitor's run: filled once the controls have run
cfg = ui.read_config(CarbonConfig, P)


def submissions() -> list[dict]:
    variants = cfg.levers()
    return [dict(key=cfg.key(), label="Footprint experiment", stage="carbon", replay=False,
                 total_steps=cfg.steps * len(variants), max_seconds=cfg.max_seconds * len(variants),
                 task=Task(levers.run_levers, cfg))]


with st.container(border=True):
    ui.preset_picker(CarbonConfig, P)
    ui.controls(P, submissions, label="Run")
    a = st.columns([2, 2, 1.3])
    for i, lever in enumerate(("bf16", "ckpt", "small", "small_loss")):
        a[i // 2].checkbox(levers.LEVERS[lever], key=f"{P}.{lever}", help=hlp(lever))
    a[2].number_input("Steps per variant", 1, 20_000, key=f"{P}.steps", step=50, help=hlp("steps"))
    with ui.advanced():
        b = st.columns(3)
        b[0].number_input("Evaluate every (steps)", 1, 20_000, key=f"{P}.eval_every", step=5, help=hlp("eval_every"))
        b[1].number_input("Time limit per variant (s)", 1, 60, key=f"{P}.max_seconds", step=5, help=hlp("max_seconds"))
        b[2].number_input("Seed", 0, 2**31 - 1, key=f"{P}.seed", help=hlp("seed"))
    ui.one_click("Memory for time: checkpointing alone", P, P,
                 {"bf16": False, "ckpt": True, "small": False, "small_loss": False},
                 key=f"{P}_one_ckpt", help="The baseline and gradient checkpointing only, with the steps set above: "
                 "checkpointing keeps a fraction of the activations for the backward pass and recomputes the rest, "
                 "so it saves memory and costs time (and energy).")


def note(d: dict) -> str:
    if d["target"] is not None:
        return (f"reached {d['target']:.3f} at step {d['reached']}" if d["reached"] else
                f"did not reach {d['target']:.3f} in {d['steps']} steps")
    return f"time limit: {d['steps']} of {d['planned']} steps" if d["steps"] < d["planned"] else ""


def outcome(done: list[dict], info: dict, key: str) -> None:
    """The experiment's result: energy against the baseline, memory kept for the backward pass, the table."""
    base = fp_kwh(done[0]["footprint"]) or float("nan")
    ratio = {d["lever"]: (fp_kwh(d["footprint"]) or float("nan")) / base for d in done}
    names = [d["label"] for d in done]
    c1, c2 = st.columns(2)
    with c1:
        fig = go.Figure(go.Bar(x=[ratio[d["lever"]] for d in done], y=names, orientation="h",
                               marker_color=[COLORS[d["lever"]] for d in done],
                               text=[f"{ratio[d['lever']]:.2f}× · {d['seconds']:.1f} s" for d in done]))
        fig.add_vline(x=1.0, line_dash="dot", line_color="gray")
        fig.update_layout(title="Energy, relative to the fp32 baseline", height=300,
                          margin=dict(l=10, r=10, t=40, b=10),
                          yaxis=dict(autorange="reversed"), xaxis_title="× the baseline's energy")
        said = [f"{levers.LEVERS[k]} {ratio[k]:.2f}×" for k in ("bf16", "ckpt", "small", "small_loss") if k in ratio]
        why = []
        if "bf16" in ratio and (has := info.get("bf16_instructions")) is not None:
            why.append("bf16 is faster only on CPUs with bfloat16 instructions (AVX-512 BF16 or AMX); the one that "
                       + ("ran this has them" if has else "ran this has none, so bf16 was emulated"))
        if "ckpt" in ratio:
            why.append("checkpointing costs energy, since it recomputes activations in the backward pass")
        by = {d["lever"]: d for d in done}
        if "small" in by:   # seconds per step: is this toy's step arithmetic or overhead?
            per = lambda d: d["seconds"] / max(1, d["steps"])  # noqa: E731
            if per(by["small"]) > 0.7 * per(by["fp32"]):
                why.append(f"a model with {by['fp32']['params'] / by['small']['params']:.0f} times fewer parameters "
                           "saves less than that here, because at this toy's size much of a step is fixed overhead, "
                           "not arithmetic; in large models the matrix products dominate and size and bf16 count "
                           "for more")
            else:
                why.append("the smaller model saves the most per step")
        ui.plot(fig, key=f"{key}_energy", notice=(
            ("Against the fp32 baseline: " + ", ".join(said) + ". " if said else "")
            + ("; ".join(why)[:1].upper() + "; ".join(why)[1:] + ". " if why else "")
            + f"The energies are codecarbon's figures ({fp_kind(done[0]['footprint']) or 'as measured'}) from CPU "
              "time on this machine, so they follow the time, and a few percent either way is noise at this size."))
    with c2:
        mib = {d["lever"]: d["saved_bytes"] / 2**20 for d in done}
        fig = go.Figure(go.Bar(x=list(mib.values()), y=names, orientation="h",
                               marker_color=[COLORS[d["lever"]] for d in done],
                               text=[f"{v:.1f} MiB" for v in mib.values()]))
        fig.update_layout(title="Memory kept for the backward pass (MiB)", height=300,
                          margin=dict(l=10, r=10, t=40, b=10), yaxis=dict(autorange="reversed"))
        ui.plot(fig, key=f"{key}_memory", notice=(
            (f"Gradient checkpointing keeps {mib['ckpt']:.1f} MiB instead of the baseline's {mib['fp32']:.1f} MiB: "
             "what it saves is memory, paid for in time. " if "ckpt" in mib else "")
            + "bf16 keeps some activations in half the bytes; the smaller model has fewer to keep. A real model keeps "
              "gigabytes per GPU for the same reason."))
    st.dataframe(pd.DataFrame([{
        "variant": d["label"], "parameters": d["params"], "steps": d["steps"], "time (s)": d["seconds"],
        "energy (Wh)": (fp_kwh(d["footprint"]) or float("nan")) * 1000, "energy / baseline": ratio[d["lever"]],
        "saved for backward (MiB)": d["saved_bytes"] / 2**20, "weights+grads+AdamW (MiB)": d["state_bytes"] / 2**20,
        "final validation loss": d["eval_loss"], "note": note(d)} for d in done]),
        hide_index=True, width="stretch", key=f"{key}_levers",
        column_config={c: st.column_config.NumberColumn(format=f) for c, f in (
            ("parameters", "localized"), ("time (s)", "%.1f"), ("energy (Wh)", "%.4f"), ("energy / baseline", "%.2f"),
            ("saved for backward (MiB)", "%.1f"), ("weights+grads+AdamW (MiB)", "%.1f"),
            ("final validation loss", "%.3f"))})
    if any(d["target"] is None and d["steps"] < d["planned"] for d in done):
        st.warning("Some variants stopped at the time limit, so they did less work than the others and their "
                   "energy is not comparable: raise the time limit or lower the steps.", icon=":material/timer:")
    kind = fp_kind(done[-1]["footprint"])
    with st.expander("What was measured, and how"):
        st.caption(
            "**Time**: wall clock per variant (building the model, training, evaluating). **Energy**: one codecarbon "
            f"meter per variant, inside the job's own; {kind}, as described under Measured here"
            + (", so it follows the time closely" if kind != "measured" else "") + ". **Saved for backward**: the "
            "tensors autograd keeps for the backward pass, at their largest in any step, counted by a "
            "`saved_tensors_hooks` pack hook (each storage once, parameters left out); it leaves out what "
            "checkpointing recomputes one layer at a time during the backward pass, and all other memory. "
            "**Weights+grads+AdamW**: 16 bytes per parameter, computed, not measured.")


def loss_curve(records: list[dict], info: dict, key: str) -> None:
    series = {}
    for r in records:
        if "eval_loss" in r:
            s = series.setdefault(r["lever"], dict(name=levers.LEVERS[r["lever"]], x=[], y=[], markers=True,
                                                   color=COLORS[r["lever"]], dash=DASHES.get(r["lever"])))
            s["x"].append(r["part_step"])
            s["y"].append(r["eval_loss"])
    if not series:
        return
    done = info.get("levers", [])
    hlines = [(d["eval_loss"], "the baseline's final validation loss") for d in done if d["lever"] == "fp32"]
    uniform = info.get("uniform_loss")
    ui.curve_chart(list(series.values()), "Validation loss (nats per character)", hlines=hlines, key=f"{key}_curve",
                   height=300, notice=(
                       "bf16 and checkpointing retrace the baseline's curve (checkpointing does the same arithmetic, "
                       "bf16 rounds it); the smaller model ends higher after the same steps, and its long run stops "
                       "once it reaches the baseline's final loss"
                       + (f". A uniform guess over the {info.get('vocab')} characters would score ln V = {uniform:.2f}"
                          if uniform else "")
                       + "; the low losses are the toy's, on templated stories."))


def draw(snaps: list[dict]) -> None:
    snap, job = snaps[0], ui.jobs_of(P)[0]
    # The runner marks a job finished a moment before it books the job's energy in the ledger: wait for
    # that, so the page's rerun when the job ends shows it under "Measured here".
    deadline = time.time() + 5
    while job.started and not job.active and job.footprint is None and time.time() < deadline:
        time.sleep(0.05)
    snap["footprint"] = job.footprint
    done = snap["info"].get("levers", [])
    if done:
        outcome(done, snap["info"], P)
    loss_curve(snap["records"], snap["info"], P)
    if (load := os.getloadavg()[0]) > (os.cpu_count() or 1):
        st.caption(f"This machine is busy (load {load:.1f} on {os.cpu_count()} cores): times and energies include "
                   "waiting for the CPU. Run again to see how much they vary.")
    ui.status_line(snap)   # last: right above the Run button, where the eyes are after pressing it


with result_area:
    if ui.jobs_of(P):
        ui.live(P, draw)
    elif DEMO is not None and demo_levers:
        info = DEMO["info"]
        st.caption(f"Recorded with the quick-demo settings, seed 0 (`python -m engine demo {levers.DEMO}`), on this "
                   f"2-core machine at load {info.get('load', float('nan')):.1f}, in {DEMO['seconds']:.0f} s; "
                   "not live. "
                   "**Run** below measures it again, here and now.")
        outcome(demo_levers, info, f"{P}_demo")
    else:
        st.info("Press **Run** below: five short trainings, each with its own energy meter, in about 20 s on a "
                "quiet machine.", icon=":material/play_circle:")

# --- measured here, in detail ---------------------------------------------------------------------------------
st.header("Measured here")
latest = LEDGER.recent(n=1)
if not latest:
    st.info("Nothing has been trained since this server started. Train a model on any page, or run the "
            "experiment above: every job's energy is added here.", icon=":material/eco:")
else:
    fp = latest[0].footprint
    if fp.kind == "measured":
        st.success(f"**How these figures were made** (latest job): {fp.method}", icon=":material/eco:")
    else:
        st.warning(f"**These are estimates, not meter readings.** How codecarbon made them on this machine "
                   f"(latest job): {fp.method}", icon=":material/info:")
    names = list(pages_all)
    fig = go.Figure([go.Bar(name="your session", x=[page_name(p) for p in names],
                            y=[pages_mine[p].energy_kwh * 1000 if p in pages_mine else 0 for p in names]),
                     go.Bar(name="whole app", x=[page_name(p) for p in names],
                            y=[pages_all[p].energy_kwh * 1000 for p in names])])
    fig.update_layout(title="Energy by page", barmode="group", height=300, yaxis_title="Wh",
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2))
    top = max(names, key=lambda p: pages_all[p].energy_kwh)
    ui.plot(fig, key=f"{P}_pages", notice=(
        f"{page_name(top)} used the most here, {num(pages_all[top].energy_kwh * 1000)} Wh. "
        f"Your session's {num(mine.emissions_g)} g CO2e is about as much CO2 as driving a typical US car "
        f"{mine.emissions_g / calculator.CAR_G_CO2_PER_KM.value * 1000:,.1f} m "
        f"({calculator.CAR_G_CO2_PER_KM.source})."))
    rows = [{"finished": datetime.datetime.fromtimestamp(e.at).strftime("%H:%M:%S"), "page": page_name(e.page),
             "job": e.label, "seconds": round(e.footprint.duration_s, 1),
             "energy (Wh)": e.footprint.energy_kwh * 1000 if e.footprint.available else None,
             "g CO2e": e.footprint.emissions_g, "figure": e.footprint.kind}
            for e in reversed(LEDGER.recent(owner))]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key=f"{P}_ledger",
                     column_config={"energy (Wh)": st.column_config.NumberColumn(format="%.4f"),
                                    "g CO2e": st.column_config.NumberColumn(format="%.4f")})

    st.subheader("The same energy on other grids")
    a, b, c = st.columns([1, 2, 1])
    my_runs = [e for e in reversed(LEDGER.recent(owner)) if e.footprint.available]
    basis = a.radio("Energy", ("run", "session", "app") if my_runs else ("app",), key=f"{P}_basis",
                    format_func={"run": "one of your runs", "session": "your session", "app": "the whole app"}.get)
    if basis == "run":
        entry = a.selectbox("Run", my_runs, key=f"{P}_run", format_func=lambda e: (
            f"{e.label or page_name(e.page)} · {datetime.datetime.fromtimestamp(e.at):%H:%M:%S} · "
            f"{e.footprint.energy_kwh * 1000:.3f} Wh"))
    st.session_state.setdefault(f"{P}_whatif", [i for i in st.session_state[f"{P}.whatif"].split(",") if i in GRID])
    b.multiselect("Grids", list(GRID), key=f"{P}_whatif", format_func=grid_label)
    st.session_state[f"{P}.whatif"] = ",".join(st.session_state[f"{P}_whatif"])
    c.slider("PUE", 1.0, 2.0, key=f"{P}.whatif_pue", step=0.01, help=hlp("whatif_pue"))
    t = entry.footprint if basis == "run" else mine if basis == "session" else everyone
    pue = st.session_state[f"{P}.whatif_pue"]
    here = fp.country_iso
    grids = sorted(st.session_state[f"{P}_whatif"], key=lambda i: GRID[i].g_per_kwh)
    bars = [(f"here, as measured ({here})", t.emissions_g)]
    bars += [(f"{GRID[i].name}, PUE {pue:g}", t.energy_kwh * pue * GRID[i].g_per_kwh) for i in grids]
    fig = go.Figure(go.Bar(x=[g for _, g in bars], y=[n for n, _ in bars], orientation="h",
                           text=[f"{num(g)} g" for _, g in bars],
                           marker_color=["#888"] + ["#3b6fd4"] * (len(bars) - 1)))
    fig.update_layout(title=f"{num(t.energy_kwh * 1000)} Wh, in g CO2e", height=80 + 28 * len(bars),
                      margin=dict(l=10, r=10, t=40, b=10), yaxis=dict(autorange="reversed"))
    ui.plot(fig, key=f"{P}_whatif_chart", notice=(
        f"The same energy emits {GRID[grids[-1]].g_per_kwh / max(GRID[grids[0]].g_per_kwh, 1e-9):,.0f} times more "
        f"on {GRID[grids[-1]].name}'s grid than on {GRID[grids[0]].name}'s: where a model trains matters as much as "
        "how. Annual averages per country (location-based)." if len(grids) > 1 else
        "Pick two or more grids to compare: the same energy emits very different amounts by country."))
    st.caption(f"This server's grid is set to {here} (the LLMX_CARBON_COUNTRY setting; USA if unset). PUE 1.0 is "
               "the energy as measured at this machine; a data centre adds cooling and power conversion. "
               "Strubell et al. used 1.58, the 2018 industry average; Patterson et al. report 1.10 for the "
               f"data centre that trained GPT-3 (sources under Published footprints). Grids: {energy.grid_source()}.")

# --- calculator ------------------------------------------------------------------------------------
st.header("Real training runs: a calculator")
st.markdown("energy = devices × power × hours × PUE; emissions = energy × grid intensity. The hours can come "
            "from the model instead: training takes about 6 × N × D FLOPs for N parameters and D tokens "
            "(Kaplan et al. 2020, 'Scaling Laws for Neural Language Models', sec. 2.1), and a device delivers "
            "its peak FLOP/s × MFU (model FLOPs utilisation).")


def use_preset() -> None:
    if key := st.session_state[f"{P}.preset"]:
        for name, value in ui.read_config(CarbonConfig, P).with_preset(key).to_dict().items():
            st.session_state[f"{P}.{name}"] = value


def use_datasheet() -> None:
    if acc := calculator.ACCELERATORS.get(st.session_state[f"{P}.accelerator"]):
        st.session_state[f"{P}.watts"] = float(acc.watts)
        st.session_state[f"{P}.peak_tflops"] = acc.peak_flops / 1e12


if st.session_state[f"{P}.country"] not in (*GRID, "custom"):
    try:
        energy.grid_intensity(st.session_state[f"{P}.country"])
    except CarbonInputError as e:
        st.toast(f"{e} Using USA.", icon="⚠️")
        st.session_state[f"{P}.country"] = "USA"

with st.container(border=True):
    st.selectbox("Start from a published run", ("", *calculator.PRESETS), key=f"{P}.preset", on_change=use_preset,
                 format_func=lambda k: calculator.PRESETS[k].name if k else "your own inputs",
                 help="fills the calculator with the inputs behind a published footprint")
    c1, c2, c3 = st.columns(3)
    with c1:
        st.markdown("**Hardware**")
        st.selectbox("Accelerator", (*calculator.ACCELERATORS, "custom"), key=f"{P}.accelerator", on_change=use_datasheet,
                     format_func=lambda k: calculator.ACCELERATORS[k].name if k in calculator.ACCELERATORS else "Custom")
        st.number_input("Power per device (W)", key=f"{P}.watts", step=10.0, format="%g", help=hlp("watts"))
        length = st.session_state[f"{P}.length"]
        if length != "device_hours":
            st.number_input("Devices", key=f"{P}.count", step=1, help=hlp("count"))
        if length == "flops":
            st.number_input("Peak TFLOP/s per device", key=f"{P}.peak_tflops", format="%g", help=hlp("peak_tflops"))
    with c2:
        st.markdown("**Length of the run**")
        st.radio("Given as", tuple(levers.LENGTHS), key=f"{P}.length", format_func=levers.LENGTHS.get)
        if length == "hours":
            st.number_input("Wall-clock hours", key=f"{P}.hours", step=24.0, format="%g")
        elif length == "device_hours":
            st.number_input("Device-hours", key=f"{P}.device_hours", step=1000, help=hlp("device_hours"))
        else:
            st.number_input("Parameters N (billions)", key=f"{P}.params_b", format="%g")
            st.number_input("Training tokens D (billions)", key=f"{P}.tokens_b", format="%g")
            st.number_input("MFU", key=f"{P}.mfu", step=0.05, format="%g", help=hlp("mfu"))
    with c3:
        st.markdown("**Data centre and grid**")
        st.number_input("PUE", key=f"{P}.pue", step=0.05, format="%g", help=hlp("pue"))
        st.selectbox("Grid", (*GRID, "custom"), key=f"{P}.country", format_func=grid_label, help=energy.grid_source())
        if st.session_state[f"{P}.country"] == "custom":
            st.number_input("Grid intensity (g CO2e/kWh)", key=f"{P}.grid_g", format="%g")

cfg: CarbonConfig = ui.read_config(CarbonConfig, P)
try:
    est = calculator.estimate(cfg.run())
except CarbonInputError as e:
    name, _, rest = str(e).partition(" ")   # the message starts with the input's name in the engine
    st.error(f"{INPUTS.get(name, name)} {rest}", icon=":material/error:")
else:
    m = st.columns(4)
    m[0].metric("energy", f"{num(est.kwh)} kWh")
    m[1].metric("emissions", f"{num(est.t_co2e)} t CO2e")
    m[2].metric("device-hours", num(est.device_hours))
    m[3].metric("wall-clock", "–" if est.wall_hours is None else f"{num(est.wall_hours)} hours"
                if est.wall_hours < 48 else f"{num(est.wall_hours / 24)} days")
    st.code("\n".join(est.steps), language=None)
    st.markdown("**That is about**\n" + "\n".join(f"- **{e.text}** ({e.factor.source})" for e in est.equivalents))
    if est.accelerator:
        st.caption(f"{est.accelerator.name}: {est.accelerator.source}. TDP is a ceiling: the average draw is "
                   "usually lower, but the host's CPUs, memory and network add to it.")
    if cfg.preset:
        cmp = calculator.compare(calculator.PRESETS[cfg.preset])
        pub = cmp.preset
        with st.container(border=True):
            st.markdown(f"**{pub.name}: published figure next to this estimate**")
            m = st.columns(4)
            m[0].metric("published energy", "not published" if pub.published_kwh is None else
                        f"{num(pub.published_kwh)} kWh")
            m[1].metric("published emissions", f"{num(pub.published_t_co2e)} t CO2e")
            m[2].metric("estimate / published", f"{cmp.kwh_ratio if cmp.kwh_ratio is not None else cmp.t_ratio:.3f}",
                        help="energy ratio, or the emissions ratio when no energy figure is published. Near 1 means "
                             "the calculator, given the paper's own inputs, redoes the paper's arithmetic: a check of "
                             "the arithmetic, not of the paper")
            m[3].metric("estimate with the published inputs", f"{num(cmp.estimate.kwh)} kWh")
            if abs(est.kwh / cmp.estimate.kwh - 1) > 1e-9:
                st.caption("You have changed the inputs since choosing this run; the comparison uses its own.")
            st.caption(f"Source: {pub.source}. A ratio near 1 checks the arithmetic with the paper's own inputs, "
                       "not the paper: the inputs are its assumptions (see its notes under Published footprints).")

# --- published footprints ------------------------------------------------------------------------
st.header("Published footprints")
rows = []
for key, pub in calculator.PRESETS.items():
    cmp = calculator.compare(pub)
    rows.append({"run": pub.name, "published kWh": "–" if pub.published_kwh is None else num(pub.published_kwh),
                 "estimate kWh": num(cmp.estimate.kwh),
                 "kWh ratio": "–" if cmp.kwh_ratio is None else f"{cmp.kwh_ratio:.3f}",
                 "published t CO2e": num(pub.published_t_co2e), "estimate t CO2e": num(cmp.estimate.t_co2e),
                 "t ratio": f"{cmp.t_ratio:.3f}", "source": pub.source})
st.table(pd.DataFrame(rows).set_index("run"))
ui.takeaway("Each estimate is the calculator fed the inputs the paper itself reports (devices, hours, power, PUE, "
            "grid), so ratios near 1.0 say the calculator redoes each paper's arithmetic: **this checks the "
            "arithmetic, not the paper**. Whether those inputs are right (a datasheet's TDP or a measured draw, the "
            "PUE, the grid, what is left out) is the paper's claim; the notes below say where they differ. Choose a "
            "run in the calculator to load its inputs.")
for key, pub in calculator.PRESETS.items():
    with st.expander(f"{pub.name}: what the figures include", expanded=key == cfg.preset):
        if pub.no_energy_reason:
            st.markdown(f"*{pub.no_energy_reason}*")
        st.markdown("\n".join(f"- {n}" for n in pub.notes))
        st.caption(f"Source: {pub.source}.")

# --- myth check --------------------------------------------------------------------------------------
st.header("Myth check")
myth = calculator.MYTH
st.markdown(f"> {myth.claim}")
m = st.columns(3)
m[0].metric("claimed", f"{num(myth.claim_kwh)} kWh")
m[1].metric("Strubell et al. 2019", f"{num(myth.fact_kwh)} kWh")
m[2].metric("overstated", f"{myth.overstatement:,.0f}×")
st.markdown(myth.verdict)
st.caption(f"The claim: {myth.claim_source} The figure: {myth.fact_source}. A home's year: "
           f"{myth.household.source}.")
