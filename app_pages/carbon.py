"""Carbon footprint: what this app's own training used, what real training runs use, and what cuts it."""
import datetime
import os
import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_pages import ui
from engine.carbon import calculator, levers
from engine.carbon.levers import CarbonConfig
from engine.core import energy, ledger
from engine.core.energy import CarbonInputError
from engine.core.ledger import LEDGER
from engine.core.report import Task
from engine.pretraining import PretrainConfig

P = "cc"  # widget-key prefix and job slot of this page
ui.init_config(CarbonConfig, P)
hlp = lambda name: ui.widget_help(CarbonConfig, name)  # noqa: E731
GRID = {r.iso: r for r in energy.grid_intensities()}
INPUTS = {  # the calculator's labels for the input names CarbonInputError messages start with
    "count": "Devices", "hours": "Wall-clock hours", "device_hours": "Device-hours", "watts": "Power per device",
    "pue": "PUE", "grid_g_per_kwh": "Grid intensity", "n_params": "Parameters N", "n_tokens": "Training tokens D",
    "mfu": "MFU", "peak_flops": "Peak FLOP/s"}


def num(x: float) -> str:
    """Three significant figures, thousands separated, never in e-notation."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def sum_totals(parts) -> ledger.Totals:
    out = ledger.Totals()
    for t in parts:
        out.merge(t)
    return out


def grid_label(iso: str) -> str:
    return "Custom intensity" if iso == "custom" else f"{GRID[iso].name} ({iso}): {GRID[iso].g_per_kwh:.0f} g/kWh"


st.title("Carbon footprint")
st.markdown(
    "Training turns electricity into a lower loss. Its carbon footprint is **energy drawn by the hardware** × "
    "**the data centre's overhead (PUE)** × **the carbon intensity of the grid** that supplied it. This page "
    "measures the first for the models trained here, estimates all three for real training runs next to their "
    "published figures, and measures what reduces the footprint.")

# --- measured here --------------------------------------------------------------------------------
st.header("Measured here")
owner = ui.visitor_id()
# Totals from the per-page figures, so the numbers and the chart below agree even if a job ends meanwhile.
pages_mine, pages_all = LEDGER.by_page(owner), LEDGER.by_page()
mine, everyone = sum_totals(pages_mine.values()), sum_totals(pages_all.values())
for title, t in (("Your session", mine), ("The whole app, since this server started", everyone)):
    st.markdown(f"**{title}**")
    m = st.columns(4)
    m[0].metric("training jobs", t.jobs)
    m[1].metric("energy", f"{num(t.energy_kwh * 1000)} Wh")
    m[2].metric("emissions", f"{num(t.emissions_g)} g CO2e")
    m[3].metric("training time", f"{t.duration_s:,.0f} s")

latest = LEDGER.recent(n=1)
if not latest:
    st.info("Nothing has been trained since this server started. Train a model on any page, or run the "
            "experiment at the bottom of this page: every job's energy is added here.", icon=":material/eco:")
else:
    fp = latest[0].footprint
    if fp.kind == "measured":
        st.success(f"**How these figures were made** (latest job): {fp.method}", icon=":material/eco:")
    else:
        st.warning(f"**These are estimates, not meter readings.** How codecarbon made them on this machine "
                   f"(latest job): {fp.method}", icon=":material/info:")
    names = list(pages_all)
    fig = go.Figure([go.Bar(name="your session", x=names, y=[pages_mine[p].energy_kwh * 1000 if p in pages_mine
                                                              else 0 for p in names]),
                     go.Bar(name="whole app", x=names, y=[pages_all[p].energy_kwh * 1000 for p in names])])
    fig.update_layout(title="Energy by page (stage)", barmode="group", height=300, yaxis_title="Wh",
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2))
    ui.plot(fig, key=f"{P}_pages")
    rows = [{"finished": datetime.datetime.fromtimestamp(e.at).strftime("%H:%M:%S"), "page": e.page,
             "job": e.label, "seconds": round(e.footprint.duration_s, 1),
             "energy (Wh)": e.footprint.energy_kwh * 1000 if e.footprint.available else None,
             "g CO2e": e.footprint.emissions_g, "figure": e.footprint.kind}
            for e in reversed(LEDGER.recent(owner))]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key=f"{P}_ledger",
                     column_config={"energy (Wh)": st.column_config.NumberColumn(format="%.4f"),
                                    "g CO2e": st.column_config.NumberColumn(format="%.4f")})
    if mine.jobs:
        st.caption(f"Your session's emissions are about as much CO2 as driving a typical US car "
                   f"{mine.emissions_g / calculator.CAR_G_CO2_PER_KM.value * 1000:,.2f} m "
                   f"({calculator.CAR_G_CO2_PER_KM.source}).")

    st.subheader("The same energy on other grids")
    a, b, c = st.columns([1, 2, 1])
    my_runs = [e for e in reversed(LEDGER.recent(owner)) if e.footprint.available]
    basis = a.radio("Energy", ("run", "session", "app") if my_runs else ("app",), key=f"{P}_basis",
                    format_func={"run": "one of your runs", "session": "your session", "app": "the whole app"}.get)
    if basis == "run":
        entry = a.selectbox("Run", my_runs, key=f"{P}_run", format_func=lambda e: f"{e.label or e.page} · "
                            f"{datetime.datetime.fromtimestamp(e.at):%H:%M:%S} · {e.footprint.energy_kwh * 1000:.3f} Wh")
    st.session_state.setdefault(f"{P}_whatif", [i for i in st.session_state[f"{P}.whatif"].split(",") if i in GRID])
    b.multiselect("Grids", list(GRID), key=f"{P}_whatif", format_func=grid_label)
    st.session_state[f"{P}.whatif"] = ",".join(st.session_state[f"{P}_whatif"])
    c.slider("PUE", 1.0, 2.0, key=f"{P}.whatif_pue", step=0.01, help=hlp("whatif_pue"))
    t = entry.footprint if basis == "run" else mine if basis == "session" else everyone
    pue = st.session_state[f"{P}.whatif_pue"]
    here = fp.country_iso
    bars = [(f"here, as measured ({here})", t.emissions_g)]
    bars += [(f"{GRID[i].name}, PUE {pue:g}", t.energy_kwh * pue * GRID[i].g_per_kwh)
             for i in sorted(st.session_state[f"{P}_whatif"], key=lambda i: GRID[i].g_per_kwh)]
    fig = go.Figure(go.Bar(x=[g for _, g in bars], y=[n for n, _ in bars], orientation="h",
                           text=[f"{num(g)} g" for _, g in bars], marker_color=["#888"] + ["#3b6fd4"] * (len(bars) - 1)))
    fig.update_layout(title=f"{num(t.energy_kwh * 1000)} Wh, in g CO2e", height=80 + 28 * len(bars),
                      margin=dict(l=10, r=10, t=40, b=10), yaxis=dict(autorange="reversed"))
    ui.plot(fig, key=f"{P}_whatif_chart")
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
                        help="energy ratio, or the emissions ratio when no energy figure is published")
            m[3].metric("estimate with the published inputs", f"{num(cmp.estimate.kwh)} kWh")
            if abs(est.kwh / cmp.estimate.kwh - 1) > 1e-9:
                st.caption("You have changed the inputs since choosing this run; the comparison uses its own.")
            st.caption(f"Source: {pub.source}.")

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
st.caption("Each estimate is the calculator with the inputs the source reports; choose a run above to load them.")
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

# --- reducing the footprint, measured -----------------------------------------------------------------
st.header("Reducing the footprint, measured")
st.markdown(
    f"The same tiny GPT (the Pretraining page's default size, {PretrainConfig().size}, on the built-in stories) "
    "trained on this CPU under each lever, one after another in a single job so they do not slow each other down. "
    "The **fp32 baseline** always runs. **bf16 autocast** does the matrix products in bfloat16. **Gradient "
    "checkpointing** keeps fewer activations and recomputes them in the backward pass. The **smaller model** "
    f"(size {levers.SMALL}) trains for the same steps, or, with a schedule {levers.SMALL_LOSS_STEPS} times as long, "
    "until its validation loss reaches the baseline's. "
    "Cleaner grids and a better PUE need other data centres: try them in the calculator above.")
with st.container(border=True):
    ui.preset_picker(CarbonConfig, P)
    a = st.columns(4)
    for col, lever in zip(a, ("bf16", "ckpt", "small", "small_loss")):
        col.checkbox(levers.LEVERS[lever], key=f"{P}.{lever}")
    a = st.columns(4)
    a[0].number_input("Steps per variant", 1, 20_000, key=f"{P}.steps", step=50)
    a[1].number_input("Evaluate every (steps)", 1, 20_000, key=f"{P}.eval_every", step=5)
    a[2].number_input("Time limit per variant (s)", 1, 60, key=f"{P}.max_seconds", step=5)
    a[3].number_input("Seed", 0, 2**31 - 1, key=f"{P}.seed")
cfg = ui.read_config(CarbonConfig, P)


def submissions() -> list[dict]:
    variants = cfg.levers()
    return [dict(key=cfg.key(), label="Footprint experiment", stage="carbon", replay=False,
                 total_steps=cfg.steps * len(variants), max_seconds=cfg.max_seconds * len(variants),
                 task=Task(levers.run_levers, cfg))]


ui.controls(P, submissions, label="Run")
COLORS = dict(zip(levers.LEVERS, ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#d62728")))
DASHES = {"bf16": "dash", "ckpt": "dot"}   # both retrace the baseline's curve: keep it visible


def note(d: dict) -> str:
    if d["target"] is not None:
        return (f"reached {d['target']:.3f} at step {d['reached']}" if d["reached"] else
                f"did not reach {d['target']:.3f} in {d['steps']} steps")
    return f"time limit: {d['steps']} of {d['planned']} steps" if d["steps"] < d["planned"] else ""


def draw(snaps: list[dict]) -> None:
    snap, job = snaps[0], ui.jobs_of(P)[0]
    # The runner marks a job finished a moment before it books the job's energy in the ledger: wait for
    # that, so the page's rerun when the job ends shows it under "Measured here".
    deadline = time.time() + 5
    while job.started and not job.active and job.footprint is None and time.time() < deadline:
        time.sleep(0.05)
    snap["footprint"] = job.footprint
    ui.status_line(snap)
    series = {}
    for r in snap["records"]:
        if "eval_loss" in r:
            s = series.setdefault(r["lever"], dict(name=levers.LEVERS[r["lever"]], x=[], y=[], markers=True,
                                                   color=COLORS[r["lever"]], dash=DASHES.get(r["lever"])))
            s["x"].append(r["part_step"])
            s["y"].append(r["eval_loss"])
    done = snap["info"].get("levers", [])
    target = [(d["eval_loss"], "the baseline's final validation loss") for d in done if d["lever"] == "fp32"]
    if series:
        ui.curve_chart(list(series.values()), "Validation loss (nats per character)", hlines=target, key=f"{P}_curve")
    if not done:
        return
    base = done[0]["footprint"].energy_kwh or float("nan")
    st.dataframe(pd.DataFrame([{
        "variant": d["label"], "parameters": d["params"], "steps": d["steps"], "time (s)": d["seconds"],
        "energy (Wh)": (d["footprint"].energy_kwh or float("nan")) * 1000,
        "energy / baseline": (d["footprint"].energy_kwh or float("nan")) / base,
        "saved for backward (MiB)": d["saved_bytes"] / 2**20, "weights+grads+AdamW (MiB)": d["state_bytes"] / 2**20,
        "final val loss": d["eval_loss"], "note": note(d)} for d in done]),
        hide_index=True, width="stretch", key=f"{P}_levers",
        column_config={c: st.column_config.NumberColumn(format=f) for c, f in (
            ("parameters", "localized"), ("time (s)", "%.1f"), ("energy (Wh)", "%.4f"), ("energy / baseline", "%.2f"),
            ("saved for backward (MiB)", "%.1f"), ("weights+grads+AdamW (MiB)", "%.1f"), ("final val loss", "%.3f"))})
    if any(d["target"] is None and d["steps"] < d["planned"] for d in done):
        st.warning("Some variants stopped at the time limit, so they did less work than the others and their "
                   "energy is not comparable: raise the time limit or lower the steps.", icon=":material/timer:")
    kind = done[-1]["footprint"].kind
    st.caption(
        "**What was measured.** Time: wall clock per variant (building the model, training, evaluating). Energy: "
        f"one codecarbon meter per variant, inside the job's own; {kind}, as described under Measured here"
        + (", so it follows the time closely" if kind != "measured" else "") + ". **Saved for backward**: the "
        "tensors autograd keeps for the backward pass, at their largest in any step, counted by a "
        "`saved_tensors_hooks` pack hook (each storage once, parameters left out); it leaves out what checkpointing "
        "recomputes one layer at a time during the backward pass, and all other memory. **Weights+grads+AdamW**: "
        "16 bytes per parameter, computed, not measured.")
    if (load := os.getloadavg()[0]) > (os.cpu_count() or 1):
        st.caption(f"This machine is busy (load {load:.1f} on {os.cpu_count()} cores): times and energies include "
                   "waiting for the CPU. Run again to see how much they vary.")


ui.live(P, draw)
