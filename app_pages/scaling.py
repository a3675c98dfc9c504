"""Model scaling: first, the two headline effects (recorded, one click each to train): loss falls along a power
law with size, and a bigger model gets worse on a small repeated text. Then the size sweep, the
compute-optimal size, the budget calculator, overfitting, and smaller models that keep most of the quality."""
import dataclasses
import math
from typing import Callable

import numpy as np
import streamlit as st
from plotly.colors import sample_colorscale

from app_pages import ui
from engine import demos
from engine.core import limits, numbers
from engine.core.config import UserError
from engine.core.report import Task
from engine.scaling import config, distill, experiments, fits, laws, plans, prune, training
from engine.scaling.config import ScalingConfig

P = "sc"  # widget-key prefix; job slots are sc_sweep, sc_iso, sc_overfit, sc_prune, sc_distill
ui.init_config(ScalingConfig, P)
cfg: ScalingConfig = ui.read_config(ScalingConfig, P)
hlp = lambda name: ui.widget_help(ScalingConfig, name)  # noqa: E731
ARCH = {"gpt2": "GPT-2", "llama": "Llama"}
LOSS = "validation loss (nats per character)"
# What the two one-click experiments run: each part's defaults (the quick demo), seed 0.
SWEEP_DEFAULTS = {f.name: f.default for f in dataclasses.fields(config.SweepConfig)}
OVERFIT_DEFAULTS = {f.name: f.default for f in dataclasses.fields(config.OverfitConfig)}
SIZES = [700, 1_000, 3_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 300_000, 500_000, 1_000_000,
         2_000_000, 3_000_000]


# --- small helpers ---------------------------------------------------------------------------------

def size_slider(label: str, name: str, presets=SIZES, fmt=numbers.human) -> None:
    """A select slider over presets that also holds whatever value a link brought."""
    key = f"{P}.{name}"
    options = sorted({*presets, st.session_state[key]})
    st.select_slider(label, options, key=key, format_func=fmt, help=hlp(name))


def palette(n: int) -> list[str]:
    """Small models light, large models dark: size reads as colour on every chart."""
    return sample_colorscale("Viridis", [0.85 - 0.75 * i / max(1, n - 1) for i in range(n)])


def plan_table(rows: list[dict], extra: tuple = ()) -> None:
    cols = ["model", "layers", "width", "heads", "N = 12·L·d²", "N (non-embedding)", "total parameters",
            "tokens D", "steps", "FLOPs 6·N·D", *extra]
    num = st.column_config.NumberColumn
    st.dataframe([{c: r[c] for c in cols if c in r} for r in rows], hide_index=True, width="stretch",
                 column_config={"FLOPs 6·N·D": num(format="%.2e"), "budget": num(format="%.0e"),
                                "peak lr": num(format="%.2e"), "tokens/parameter": num(format="%.1f"),
                                **{c: num(format="compact") for c in ("N = 12·L·d²", "N (non-embedding)",
                                                                       "total parameters", "tokens D")}})


def statuses(slot: str, snaps: list[dict]) -> None:
    for s in snaps:
        ui.status_line(s)


def train_series(records: list[dict], colors: dict, dash=None, suffix="") -> list[dict]:
    """Smoothed training loss against tokens seen, one line per model."""
    out = []
    for g in dict.fromkeys(r["label"] for r in records if "loss" in r):
        rs = [r for r in records if r.get("label") == g and "loss" in r]
        out.append(dict(name=f"{g}{suffix}", x=[r["tokens"] for r in rs], y=ui.smooth([r["loss"] for r in rs]),
                        color=colors.get(g), dash=dash))
    return out


def try_plan(fn, *args):
    """A plan, or None after showing why it cannot run (the same message Start would give)."""
    try:
        return fn(*args)
    except UserError as e:
        st.error(str(e), icon=":material/error:")
        return None


@st.cache_data(max_entries=64, show_spinner=False)
def fit(n: tuple, loss: tuple, floor: bool) -> fits.PowerLawFit:
    """The bootstrap refits 300 times: once per set of finished models, not on every refresh."""
    return fits.fit_power_law(n, loss, floor=floor)


def vocab_of(corpus: str, block: int) -> int:
    return len(training.load_corpus(corpus, block).tokenizer)


# --- the first screen: the two headline effects, recorded or your own run -------------------------------

def as_snap(demo: dict) -> dict:
    """A recorded demo in the shape of a job's snapshot, so one drawing serves both."""
    return {"id": "demo", "label": demo["name"], "status": demo["status"], "info": demo["info"],
            "records": demo["records"]}


def law_points(snaps: list[dict]) -> dict[str, list[dict]]:
    """arch -> the models of the sweep that finished."""
    out = {}
    for s in snaps:
        done = [m for m in s["info"].get("models", []) if m["status"] == "done"]
        if done:
            out[s["info"]["arch"]] = done
    return out


def law_panel(snaps: list[dict], recorded: dict | None = None) -> None:
    """Final validation loss against size, with the power law A/N^α through it."""
    if not recorded:
        for s in snaps:
            ui.status_line(s)
    points = law_points(snaps)
    if not points:
        return
    series, alphas = [], {}
    for arch, done in points.items():
        n, loss = [m["N (non-embedding)"] for m in done], [m["eval_loss"] for m in done]
        color = "#1f77b4" if arch == "gpt2" else "#d62728"
        series.append(dict(name=f"{ARCH[arch]} models", x=n, y=loss, mode="markers", color=color, size=11))
        if len(set(n)) >= 3:
            law = fit(tuple(n), tuple(loss), False)
            alphas[arch] = law.alpha
            grid = np.geomspace(min(n) / 1.5, max(n) * 1.5, 40)
            series.append(dict(name=f"L = A/N^α, α = {law.alpha:.3f}", x=grid, y=law.predict(grid), color=color,
                               dash="dot"))
    first = next(iter(points.values()))
    tokens = first[0]["tokens D"]
    uni = snaps[0]["info"].get("uniform_loss")
    lo, hi = min(m["eval_loss"] for m in first), max(m["eval_loss"] for m in first)
    if alphas:
        alpha = next(iter(alphas.values()))
        notice = (f"{'Recorded: each' if recorded else 'Each'} point is a model trained on the same {tokens:,} "
                  f"characters; the loss falls from {hi:.2f} to {lo:.2f} nats per character (a uniform guess: "
                  f"ln V = {uni:.2f}) roughly along a straight line on log-log axes, a power law with α = {alpha:.3f}. "
                  f"Kaplan et al. (2020) measured α = {laws.KAPLAN_ALPHA_N} on real text; the two exponents are not "
                  "comparable (see the size sweep's table): the shape carries over, the constant does not.")
    else:
        notice = (f"Each point is a model trained on the same {tokens:,} characters (a uniform guess: "
                  f"ln V = {uni:.2f}); the power law is fitted once three sizes have finished.")
    ui.curve_chart(series, "Final validation loss against size (log-log)", notice=notice,
                   xtitle="non-embedding parameters N", ytitle=LOSS, log_x=True, log_y=True, height=330,
                   key="sc_top_law" if recorded else "sc_top_law_live")


def overfit_series(s: dict) -> tuple[list[dict], dict]:
    """Training (solid) and validation (dashed) loss against epochs, for the small and the large model,
    and per role: its evaluations and its best one."""
    per_epoch = s["info"].get("epoch_tokens")
    series, roles = [], {}
    if not per_epoch:
        return series, roles
    for role, color in (("small", "#2ca02c"), ("large", "#d62728")):
        ev = [r for r in s["records"] if r.get("role") == role and "eval_loss" in r]
        if not ev:
            continue
        ep = [r["tokens"] / per_epoch for r in ev]
        name = f"{role} ({ev[0]['label']})"
        series.append(dict(name=f"{name} training", x=ep, y=[r["train_eval_loss"] for r in ev], color=color))
        series.append(dict(name=f"{name} validation", x=ep, y=[r["eval_loss"] for r in ev], color=color,
                           dash="dash", mode="lines+markers", size=5))
        roles[role] = {"name": name, "ev": ev, "best": min(ev, key=lambda r: r["eval_loss"]), "per_epoch": per_epoch}
    return series, roles


def overfit_notice(roles: dict, uniform: float | None, recorded: bool) -> str:
    anchor = f" A uniform guess scores ln V = {uniform:.2f}." if uniform else ""
    if "large" not in roles:
        return ("Solid: loss on the training text; dashed: on unseen text. Watch the gap between them open." + anchor)
    lg, sm = roles["large"], roles["small"]
    ep = lambda r, x: r["tokens"] / x["per_epoch"]  # noqa: E731
    last_l, last_s = lg["ev"][-1], sm["ev"][-1]
    ends = (f", and ends better than the large one ({last_s['eval_loss']:.2f} against {last_l['eval_loss']:.2f})"
            if last_s["eval_loss"] < last_l["eval_loss"] else "")
    return (f"{'Recorded: the' if recorded else 'The'} large model is best at epoch {ep(lg['best'], lg):.0f} "
            f"(validation {lg['best']['eval_loss']:.2f} nats per character), then gets worse on unseen text, "
            f"{last_l['eval_loss']:.2f} by epoch {ep(last_l, lg):.0f}, while its training loss keeps falling to "
            f"{last_l['train_eval_loss']:.2f}: it memorises the training text. The small model cannot; its "
            f"validation loss keeps falling, to {last_s['eval_loss']:.2f}{ends}.{anchor} The numbers are this toy's.")


def overfit_panel(snaps: list[dict], recorded: dict | None = None) -> None:
    if not recorded:
        ui.status_line(snaps[0])
    series, roles = overfit_series(snaps[0])
    if series:
        ui.curve_chart(series, "Training (solid) and validation (dashed) loss", xtitle="epochs over the training text",
                       ytitle="loss (nats per character)", height=330,
                       key="sc_top_over" if recorded else "sc_top_over_live",
                       notice=overfit_notice(roles, snaps[0]["info"].get("uniform_loss"), bool(recorded)))


def headline(slot: str, demo_name: str, draw: Callable, label: str, settings: dict, help: str,
             recorded_as: Callable[[dict], str]) -> None:
    """One headline effect: its one click, then this visitor's run if they started one, else the recording."""
    ui.one_click(label, P, slot, settings, help=help, key=f"{slot}_headline")
    if ui.jobs_of(slot):
        ui.live(slot, draw, every=1.0, downloads=False)
    elif demo := demos.load(demo_name):
        draw([as_snap(demo)], recorded=demo)
        st.caption(f":material/history: **Recorded**, not live: {recorded_as(demo)}, seed "
                   f"{demo['stage_config']['seed']} (the quick-demo settings). The button trains it again.")
    else:
        st.info("Not recorded yet: press the button to train it.", icon=":material/play_arrow:")

# --- the page --------------------------------------------------------------------------------------

st.title("Model scaling")
st.markdown(
    "A bigger language model reaches a lower loss, along a **power law**: that regularity is how labs choose a "
    "model's size before spending the compute. **But bigger is not always better**: given too little text, "
    "repeated, a bigger model memorises it and gets worse. Both were recorded below with tiny character-level "
    "models on this CPU; one click trains each again.")
top = st.columns(2, gap="medium")   # the two headline effects, filled at the end (after the tabs' controls)
st.markdown("**The two counts** every scaling law is written in:")
a, b = st.columns(2)
a.latex(r"N \approx 12\,L\,d^2")
b.latex(r"C \approx 6\,N\,D")
st.caption("N: non-embedding parameters of L layers of width d. Attention has 4d² weights (query, key, value, "
           "output) and the MLP 8d² (d → 4d → d) per layer (Kaplan et al. 2020, section 2.1). C: training FLOPs for "
           "D tokens, as every token costs about 2N FLOPs forward and 4N backward. Embeddings are left out of N, as "
           "Kaplan did: counting them bends the curves at small sizes.")


# --- 1. the size sweep ----------------------------------------------------------------------------
def sweep_tab(open: bool) -> None:
    """Loss against size: a sweep of sizes on the same tokens, and the power law fitted to it."""
    st.markdown("Train models of several sizes on **the same text for the same number of tokens**, smallest "
                "first, in one job. Then plot each one's final loss against its size and fit "
                "**L(N) = E + A / N^α**.")
    with st.container(border=True):
        ui.preset_picker(ScalingConfig, P)
        a, b, c = st.columns(3)
        a.radio("Corpus", ("python-docs", "world"), key=f"{P}.corpus", horizontal=True, help=hlp("corpus"),
                format_func={"python-docs": "Python's docs (real English)", "world": "Built-in stories"}.get)
        with b:
            size_slider("Largest N", "max_params")
        with c:
            size_slider("Training tokens per model", "tokens",
                        (50_000, 100_000, 150_000, 200_000, 300_000, 500_000, 1_000_000, 2_000_000))
        with ui.advanced("settings: architecture, sizes, batch, context, learning rate, seed"):
            a, b, c = st.columns(3)
            a.segmented_control("Architecture", ("gpt2", "llama", "both"), key=f"{P}.arch", required=True,
                                help=hlp("arch"), format_func={"gpt2": "GPT-2", "llama": "Llama", "both": "Both"}.get)
            b.slider("Models", 1, 6, key=f"{P}.n_models", help=hlp("n_models"))
            with c:
                size_slider("Smallest N", "min_params")
            a.number_input("Batch size", 1, 128, key=f"{P}.batch_size", help=hlp("batch_size"))
            b.select_slider("Context (characters)", [16, 32, 64, 128, 256], key=f"{P}.block_size",
                            help=hlp("block_size"))
            c.number_input("Learning-rate scale", 0.1, 10.0, key=f"{P}.lr_scale", step=0.25, help=hlp("lr_scale"))
            a.number_input("Seed", 0, 2**31 - 1, key=f"{P}.seed", help=hlp("seed"))
            st.caption("Batch, context, seed and corpus are shared by the size sweep, the compute-optimal sizes and "
                       "the overfitting pair.")
    st.caption("Python's documentation is real prose with a long tail of words and symbols, so every size has "
               "more to learn and the losses line up on a clean power law. The built-in stories are generated "
               "from templates: larger models learn the templates almost exactly and the curve drops off a cliff "
               "rather than following a power law.")
    sweep = cfg.part(config.SweepConfig)
    sweeps = {one.arch: try_plan(plans.sweep_plan, one, vocab_of(one.corpus, one.block_size)) for one in sweep.archs()}
    for arch, plan in sweeps.items():
        if plan:
            with st.expander(f"The {len(plan)} {ARCH[arch]} models: parameters and FLOPs", expanded=False):
                plan_table([s.row() for s in plan], ("peak lr",))
                st.caption(f"Total {sum(s.flops for s in plan):.2e} FLOPs. Peak learning rate by size from Kaplan "
                           "et al. (2020, eq. D.1), LR(N) = 0.003239 − 0.0001395·ln N"
                           + (f", times {sweep.lr_scale:g}" if sweep.lr_scale != 1 else "")
                           + "; warmup then cosine decay over the run, and the same batches for every model.")

    def sweep_jobs() -> list[dict]:
        owner = ui.visitor_id()
        out = []
        for one in sweep.archs():
            plan = plans.sweep_plan(one, vocab_of(one.corpus, one.block_size))  # refuses bad sizes at the click
            out.append(dict(key=one.key(), label=f"{ARCH[one.arch]} sweep", total_steps=sum(s.steps for s in plan),
                            max_seconds=limits.MAX_JOB_SECONDS, stage="scaling",
                            task=Task(experiments.run_sweep, one, {"owner": owner})))
        return out

    ui.controls("sc_sweep", sweep_jobs)

    def draw_sweep(snaps: list[dict]) -> None:
        statuses("sc_sweep", snaps)
        series, points = [], {}
        for s in snaps:
            plan = s["info"].get("plan", [])
            colors = dict(zip([r["model"] for r in plan], palette(len(plan))))
            dash = "dash" if s["info"].get("arch") == "llama" else None
            tag = f" {ARCH.get(s['info'].get('arch'), '')}" if len(snaps) > 1 else ""
            series += train_series(s["records"], colors, dash=dash, suffix=tag)
            done = [m for m in s["info"].get("models", []) if m["status"] == "done"]
            if done:
                points[s["info"]["arch"]] = done
        if series:
            uni = snaps[0]["info"].get("uniform_loss")
            ui.curve_chart(series, "Training loss of every size (smoothed), as it trains",
                           xtitle="tokens seen", ytitle="training loss (nats per character)",
                           key="sc_sweep_curves",
                           hlines=[(uni, f"ln V = {uni:.2f}: a uniform guess")] if uni else (),
                           notice="Every size starts near the uniform guess and sees the same tokens; the larger "
                                  "ones (darker) fall further and faster per token: size buys lower loss, not "
                                  "only capacity.")
        if points:
            draw_fit(points)

    def draw_fit(points: dict) -> None:
        series, laws_fitted = [], {}
        for arch, done in points.items():
            n = [m["N (non-embedding)"] for m in done]
            loss = [m["eval_loss"] for m in done]
            color = "#1f77b4" if arch == "gpt2" else "#d62728"
            series.append(dict(name=f"{ARCH[arch]} models", x=n, y=loss, mode="markers", color=color, size=10))
            grid = np.geomspace(min(n) / 2, max(n) * 2, 60)
            for floor, dash in ((False, "dashdot"), (True, "dot")):
                try:
                    law = laws_fitted[arch, floor] = fit(tuple(n), tuple(loss), floor)
                except UserError as e:  # too few sizes: say so, show the points anyway
                    if floor:
                        st.caption(f"{ARCH[arch]}: {e}")
                    else:
                        st.info(f"{ARCH[arch]}: {e}", icon=":material/info:")
                    continue
                series.append(dict(name=f"{ARCH[arch]} {'E + A/N^α' if floor else 'A/N^α'}: α = {law.alpha:.3f}",
                                   x=grid, y=law.predict(grid), color=color, dash=dash))
        fitted = {k: v for k, v in laws_fitted.items() if not k[1]}
        ui.curve_chart(series, "Final validation loss against size (log-log)",
                       xtitle="non-embedding parameters N", ytitle=LOSS, log_x=True, log_y=True,
                       key="sc_sweep_fit",
                       notice=("A straight line on log-log axes is a power law: "
                               + ", ".join(f"α = {law.alpha:.3f} for {ARCH[arch]}" for (arch, _), law in fitted.items())
                               + " here, the toy's own exponent. Dotted, with a floor E: the curve bends "
                               "towards the loss no size can beat on this text.") if fitted else
                              "Each point is one size's final validation loss; a power law needs three finished "
                              "sizes to fit.")
        if not laws_fitted:
            return
        rows = {False: [], True: []}
        for (arch, floor), law in laws_fitted.items():
            lo, hi = law.alpha_range
            done = points[arch]
            what = (f"characters, models of {numbers.human(min(m['N (non-embedding)'] for m in done))} to "
                    f"{numbers.human(max(m['N (non-embedding)'] for m in done))}, {numbers.human(done[0]['tokens D'])} "
                    "tokens each")
            rows[floor].append(f"| your {ARCH[arch]} sweep ({what}) | {'E + A/N^α' if floor else 'A/N^α'} | "
                               f"**{law.alpha:.3f}** ± {law.alpha_std:.3f} ({lo:.3f} to {hi:.3f}) | "
                               + (f"E = {law.E:.2f}, A = {law.A:.3g}" if floor else f"A = {law.A:.3g}") + " |")
        st.markdown("| | law | exponent α of N | constants |\n|---|---|---|---|\n" + "\n".join(rows[False]) + "\n"
                    f"| Kaplan et al. 2020 (BPE tokens of WebText2, models of 768 to 1.5B parameters) | (N_c/N)^α_N | "
                    f"**{laws.KAPLAN_ALPHA_N}** | N_c = 8.8e13 |\n"
                    + "".join(r + "\n" for r in rows[True])
                    + f"| Hoffmann et al. 2022 (MassiveText, 70M to 16B parameters) | E + A/N^α + B/D^β | "
                    f"**{laws.CHINCHILLA['alpha']}** "
                    f"(β = {laws.CHINCHILLA['beta']} for data) | E = 1.69, A = 406.4, B = 410.7 |")
        ui.takeaway("**Your α and Kaplan's are not comparable.** Yours is measured in characters, on models of "
                    "thousands to hundreds of thousands of parameters, each trained on a few hundred thousand "
                    "characters of one small corpus; Kaplan's in byte-pair tokens of WebText2, on models of 768 to "
                    "1.5 billion parameters trained close to convergence on billions of tokens. A different unit, "
                    "range and amount of training give a different constant. What carries over is the shape: a "
                    "straight line on log-log axes, flattening towards a floor.")
        st.caption("± one bootstrap standard deviation, and in brackets a 68% interval: the residuals were resampled "
                   "onto the fitted curve and the fit repeated 300 times. With a floor E, a curve that barely bends "
                   "fits almost as well with a higher floor and a steeper exponent, so that interval is wide; "
                   "without one (Kaplan's form) it is narrow. Hoffmann (Chinchilla): N and D fitted together. "
                   "**The absolute constants do not transfer** to a character-level toy trained on a few "
                   "hundred thousand tokens (other tokens, data and sizes), **but the shape does**: a power law in N "
                   "that flattens towards a floor.")

    if open:   # a closed tab's charts would be drawn unseen, slowing the run
        ui.live("sc_sweep", draw_sweep)

# --- 2. IsoFLOP ---------------------------------------------------------------------------------
def isoflop_tab(open: bool) -> None:
    """The compute-optimal size: several sizes on the same compute budget form a U."""
    st.markdown(
        "With a fixed compute budget C ≈ 6·N·D, a bigger model gets fewer tokens. Too small a model cannot use "
        "the data; too large a model sees too little of it. Train several sizes **on the same budget** and the "
        "losses form a **U**; its bottom is the compute-optimal size (Hoffmann et al. 2022, Approach 2: "
        "\"IsoFLOP profiles\").")
    with st.container(border=True):
        st.text_input("Compute budgets in FLOPs (one to three)", key=f"{P}.budgets", help=hlp("budgets"),
                      placeholder="1e10,3e10")
        st.caption("1e10 and 3e10 take about a minute and a half on a quiet machine (longer while others train); "
                   "1e11 several minutes more.")
        with ui.advanced("sizes"):
            a, b, c = st.columns(3)
            a.slider("Sizes per budget", 3, 7, key=f"{P}.iso_models", help=hlp("iso_models"))
            with b:
                size_slider("Smallest N", "iso_min")
            with c:
                size_slider("Largest N", "iso_max")
    st.caption(f"Same corpus, context, batch and seed as the size sweep ({cfg.corpus}).")
    iso = cfg.part(config.IsoConfig)
    iso_plan = try_plan(plans.iso_plan, iso, vocab_of(iso.corpus, iso.block_size))
    if iso_plan:
        plan, notes = iso_plan
        for note in notes:
            st.warning(note, icon=":material/warning:")
        budgets = sorted({c for c, _ in plan})
        lo, hi = laws.CHINCHILLA_RANGE
        if max(budgets) < lo:
            st.warning(f"These budgets are {math.floor(math.log10(lo / max(budgets)))} to "
                       f"{math.floor(math.log10(hi / min(budgets)))} orders of magnitude below the {lo:.0e} to "
                       f"{hi:.0e} FLOPs of Hoffmann et al.'s isoFLOP runs (2022, figure 3): the \"Chinchilla fit's "
                       "N_opt\" column extrapolates their law far outside what it was measured on. Read it as a "
                       "comparison, not a prediction for these models.", icon=":material/warning:")
        with st.expander(f"The {len(plan)} runs: each size gets the tokens its budget allows"):
            plan_table([{**s.row(), "budget": c, "tokens/parameter": s.tokens / s.n} for c, s in plan],
                       ("budget", "tokens/parameter"))

    def iso_jobs() -> list[dict]:
        plan, _ = plans.iso_plan(iso, vocab_of(iso.corpus, iso.block_size))
        return [dict(key=iso.key(), label="IsoFLOP runs", total_steps=sum(s.steps for _, s in plan),
                     max_seconds=limits.MAX_JOB_SECONDS, stage="scaling", task=Task(experiments.run_isoflop, iso))]

    ui.controls("sc_iso", iso_jobs)

    def draw_iso(snaps: list[dict]) -> None:
        statuses("sc_iso", snaps)
        s = snaps[0]
        budgets = sorted({r["budget"] for r in s["info"].get("plan", [])})
        colors = dict(zip(budgets, sample_colorscale("Plasma", [0.1 + 0.7 * i / max(1, len(budgets) - 1)
                                                                 for i in range(len(budgets))])))
        plan = s["info"].get("plan", [])
        curves = []
        for i in dict.fromkeys(r["model"] for r in s["records"] if "loss" in r):  # one curve per run, in order
            rs = [r for r in s["records"] if "loss" in r and r["model"] == i]
            n, c = plan[i]["N (non-embedding)"], plan[i]["budget"]
            curves.append(dict(name=f"{plan[i]['model']} @ {c:.0e}", x=[6 * n * r["tokens"] for r in rs],
                               y=ui.smooth([r["loss"] for r in rs]), color=colors[c], legend=False))
        done = [r for r in s["info"].get("runs", []) if r["status"] == "done"]
        left, right = st.columns(2)
        with left:
            if curves:
                ui.curve_chart(curves, "Training curves against compute spent", xtitle="FLOPs 6·N·tokens",
                               ytitle="training loss (nats per character, smoothed)", log_x=True, key="sc_iso_curves",
                               x_power=True,
                               notice="Each curve ends at its budget: at the same compute a bigger model has "
                                      "taken fewer steps, so where the curves end, not how low they could go, "
                                      "decides the size.")
        if not done:
            return
        series, rows, optima = [], [], []
        for prof in fits.isoflop_profiles(done):
            c = prof.budget
            series.append(dict(name=f"C = {c:.0e}", x=prof.n, y=prof.loss, mode="lines+markers", color=colors[c]))
            row = {"budget C": f"{c:.0e}", "Chinchilla fit's N_opt": numbers.human(laws.chinchilla_optimal(c)["n"]),
                   "note": prof.note}
            if prof.best:
                grid = np.geomspace(min(prof.n), max(prof.n), 40)
                a_, b_, c_ = prof.best["coef"]
                series.append(dict(name=f"parabola {c:.0e}", x=grid, y=a_ * np.log(grid) ** 2 + b_ * np.log(grid) + c_,
                                   color=colors[c], dash="dot", legend=False))
                series.append(dict(name=f"minimum {c:.0e}", x=[prof.best["n_opt"]], y=[prof.best["loss"]],
                                   mode="markers", symbol="star", size=16, color=colors[c], legend=False))
                optima.append((c, prof.best["n_opt"]))
                row.update({"N_opt": numbers.human(prof.best["n_opt"]), "D_opt": numbers.human(prof.d_opt),
                            "tokens per parameter": f"{prof.d_opt / prof.best['n_opt']:.0f}"})
            rows.append(row)
        with right:
            best = [p for p in fits.isoflop_profiles(done) if p.best]
            ui.curve_chart(series, "IsoFLOP profiles: final loss against size",
                           xtitle="non-embedding parameters N", ytitle=LOSS, log_x=True,
                           key="sc_iso_profiles",
                           notice=("Each budget's losses form a U: too small a model cannot use the data, too large "
                                   "a one sees too little of it. The stars, the bottoms, are this toy's "
                                   "compute-optimal sizes: "
                                   + ", ".join(f"{numbers.human(p.best['n_opt'])} at {p.budget:.0e} FLOPs"
                                               for p in best) + ".") if best else
                                  "No U yet: the losses must curve upward on both sides of a size for its bottom "
                                  "to be found (see the note in the table).")
        cols = ["budget C", "N_opt", "D_opt", "tokens per parameter", "Chinchilla fit's N_opt", "note"]
        st.dataframe([{k: r.get(k, "–") for k in cols} for r in rows], hide_index=True, width="stretch")
        if optima:
            ratios = [c / (6 * n * n) for c, n in optima]
            st.markdown(f"Your runs prefer about **{np.median(ratios):.0f} tokens per parameter**; Hoffmann et al. "
                        f"(2022) found about **{laws.CHINCHILLA_TOKENS_PER_PARAM}** for large models on web text. At "
                        "budgets this small a larger model gets only a few dozen optimizer steps, so the best use of "
                        "the compute is a very small model fed many tokens. What carries over is the U itself, and "
                        "that its bottom moves to larger models as the budget grows: compare the budgets.")
        st.session_state["_sc_iso_optima"] = optima  # the calculator marks them on its chart

    if open:   # a closed tab's charts would be drawn unseen, slowing the run
        ui.live("sc_iso", draw_iso)

# --- 3. calculator --------------------------------------------------------------------------------
def calculator_tab(open: bool) -> None:
    """From a compute budget to N and D under the published allocations."""
    st.markdown("From a compute budget to the compute-optimal model size N and tokens D, under the two "
                "published allocations.")
    st.number_input("Training compute C (FLOPs)", min_value=1.0, max_value=1e30, key=f"{P}.flops", format="%.3e",
                    help="5.76e23 is what Gopher and Chinchilla were trained with. 1 PF-day = 8.64e19 FLOPs.")
    C = cfg.flops
    try:
        chin, kap = laws.chinchilla_optimal(C), laws.kaplan_optimal(C)
        if chin["n"] < 1 or chin["d"] < 1:
            raise UserError(f"C = {C:.3g} FLOPs is too small to train any model: the optimum comes out under one "
                            "parameter or one token. Try 1e10 or more.")
    except UserError as e:
        st.error(str(e), icon=":material/error:")
    else:
        eq, ct = laws.chinchilla_equal_scaling(C), laws.CHINCHILLA_AS_TRAINED
        st.table([{"allocation": "Chinchilla as trained (Hoffmann et al. 2022, table 1; at 5.76e23 FLOPs)",
                   "N_opt": numbers.human(ct["n"]), "D_opt (tokens)": numbers.human(ct["d"]),
                   "tokens per parameter": f"{ct['d'] / ct['n']:.3g}",
                   "predicted loss": f"{laws.chinchilla_loss(ct['n'], ct['d']):.2f}"},
                  {"allocation": "Chinchilla, Approaches 1–2 (a ≈ b ≈ 0.5: about 20 tokens per parameter)",
                   "N_opt": numbers.human(eq["n"]), "D_opt (tokens)": numbers.human(eq["d"]),
                   "tokens per parameter": f"{eq['tokens_per_param']:.3g}", "predicted loss": f"{eq['loss']:.2f}"},
                  {"allocation": "Chinchilla, Approach 3 (Hoffmann et al. 2022, constants as printed)",
                   "N_opt": numbers.human(chin["n"]), "D_opt (tokens)": numbers.human(chin["d"]),
                   "tokens per parameter": f"{chin['tokens_per_param']:.3g}", "predicted loss": f"{chin['loss']:.2f}"},
                  {"allocation": "Kaplan et al. 2020", "N_opt": numbers.human(kap["n"]),
                   "D_opt (tokens)": numbers.human(kap["d"]),
                   "tokens per parameter": f"{kap['tokens_per_param']:.2g}", "predicted loss": "–"}])
        a, b = st.columns(2)
        a.latex(r"L(N,D) = 1.69 + \frac{406.4}{N^{0.34}} + \frac{410.7}{D^{0.28}}")
        a.caption("Hoffmann 2022, Approach 3 (section 3.3, appendix D.2): minimising it subject to C = 6ND gives "
                  "N_opt = G·(C/6)^(β/(α+β)) with G = (αA/(βB))^(1/(α+β)), and D_opt = C/(6·N_opt) (eq. 4).")
        st.markdown(
            "**Why the rows differ.** Approaches 1 and 2 (minimum over training curves; IsoFLOP profiles) found "
            "N_opt ∝ C^0.50 and C^0.49 (Hoffmann et al. 2022, table 2): parameters and tokens grow together, about "
            f"{laws.CHINCHILLA_TOKENS_PER_PARAM} tokens per parameter at every budget, and Chinchilla itself was "
            "trained "
            "that way, 70B parameters on 1.4T tokens. Approach 3 fits L(N, D) above; its constants as printed give "
            "N_opt ∝ C^0.45 and, at Chinchilla's budget, about 32B parameters on 3T tokens (about 93 tokens per "
            "parameter). Besiroglu et al. 2024 (arXiv:2404.10102) refitted Approach 3 on data reconstructed from the "
            "paper's figures and found two causes: Hoffmann et al.'s optimizer stopped before convergence (a poor "
            "choice of loss scale), and the constants printed in the paper are rounded (the TeX source's α = 0.3392, "
            "β = 0.2849 alone give about 40B). Their refit (E = 1.82, A = 482.01, B = 2085.43, α = 0.3478, "
            "β = 0.3658) gives about 72B on 1.3T tokens, about 18 tokens per parameter, in line with Approaches 1 "
            "and 2.")
        b.latex(r"N_{opt} = 1.3\times10^{9}\,\left(C / \text{PF-day}\right)^{0.73}")
        b.caption("Kaplan 2020, figure 14 and table 6 (non-embedding N; 1 PF-day = 8.64e19 FLOPs): most extra "
                  "compute goes into size, ×5.4 per ×10, little into data; here D = C/(6·N). Their runs stopped short "
                  "of convergence on one fixed schedule, which Hoffmann 2022 found biased this towards large models.")
        lo, hi = laws.CHINCHILLA_RANGE
        if not lo / 1e3 <= C <= hi * 1e3:
            st.warning(f"{C:.1e} FLOPs is far outside the budgets these laws were measured on (Chinchilla's "
                       f"isoFLOP runs spanned {lo:.0e} to {hi:.0e}): read the numbers as an extrapolation.",
                       icon=":material/warning:")
        cs = np.geomspace(1e9, 1e26, 60)
        series = [dict(name="Chinchilla N_opt", x=cs, y=[laws.chinchilla_optimal(x)["n"] for x in cs], color="#2ca02c"),
                  dict(name="Kaplan N_opt", x=cs, y=[laws.kaplan_optimal(x)["n"] for x in cs], color="#9467bd"),
                  dict(name="your budget", x=[C, C], y=[chin["n"], kap["n"]], mode="markers", color="black",
                       symbol="x", size=12)]
        if optima := st.session_state.get("_sc_iso_optima"):
            series.append(dict(name="your isoFLOP minima", x=[c for c, _ in optima], y=[n for _, n in optima],
                               mode="markers",
                               color="#ff7f0e", symbol="star", size=14))
        if open:
            ui.curve_chart(series, "Compute-optimal model size against budget",
                           xtitle="training compute C (FLOPs)", ytitle="parameters N", log_x=True, log_y=True,
                           key="sc_calc_chart", x_power=True,
                           notice=f"At your budget the two published allocations differ "
                                  f"{max(chin['n'], kap['n']) / min(chin['n'], kap['n']):.0f}×: "
                                  "Kaplan's line (C^0.73) puts most extra compute into size, Chinchilla's (C^0.45 by "
                                  "Approach 3's printed constants) splits it more evenly between size and tokens. Both "
                                  "were fitted on real models up to billions of parameters; this page's own minima "
                                  "(stars, once you run the isoFLOP budgets) sit many orders of magnitude lower.")

# --- 4. overfitting -------------------------------------------------------------------------------
def overfit_tab(open: bool) -> None:
    """When bigger is not better: a large model memorises a small repeated text."""
    st.markdown("On a **small text repeated for many epochs**, a large model memorises it: its training loss keeps "
                "falling while its validation loss turns **upward**. A small model cannot memorise and keeps "
                "improving. Both are trained below, one after the other, on the same characters. Bigger is not "
                "automatically better at a fixed compute budget either: Chinchilla (70B parameters, 1.4T tokens) "
                "outperformed Gopher (280B parameters, 300B tokens), trained with the same compute, on a large range "
                "of downstream tasks (Hoffmann et al. 2022, abstract and section 4.2).")
    with st.container(border=True):
        a, b = st.columns(2)
        # The config's range: a link may ask for 500.
        a.slider("Epochs", 1, 500, key=f"{P}.of_epochs", help=hlp("of_epochs"))
        with b:
            size_slider("Large model N", "of_large")
        with ui.advanced("settings: text size, small model, learning rate"):
            a, b, c = st.columns(3)
            with a:
                size_slider("Training text (characters)", "of_chars", (2_000, 5_000, 10_000, 20_000, 50_000, 100_000))
            with b:
                size_slider("Small model N", "of_small")
            c.number_input("Learning-rate scale", 0.1, 10.0, key=f"{P}.of_lr_scale", step=0.25,
                           help=hlp("of_lr_scale"))
    over = cfg.part(config.OverfitConfig)
    if over_plan := try_plan(plans.overfit_plan, over, vocab_of(over.corpus, over.block_size)):
        with st.expander("The two models: parameters and FLOPs"):
            plan_table([s.row() for s in over_plan], ("peak lr",))
    st.caption(f"{over.of_chars:,} characters × {over.of_epochs} epochs = {over.of_chars * over.of_epochs:,} training "
               f"tokens per model, no dropout, peak learning rate {over.of_lr_scale:g}× Kaplan's LR(N); validation "
               "on unseen text from the same corpus.")

    def over_jobs() -> list[dict]:
        small, large = plans.overfit_plan(over, vocab_of(over.corpus, over.block_size))
        return [dict(key=over.key(), label="Small and large model", total_steps=small.steps + large.steps,
                     max_seconds=limits.MAX_JOB_SECONDS, stage="scaling", task=Task(experiments.run_overfit, over))]

    ui.controls("sc_overfit", over_jobs)

    def draw_over(snaps: list[dict]) -> None:
        statuses("sc_overfit", snaps)
        series, roles = overfit_series(snaps[0])
        for (role, r), col in zip(roles.items(), st.columns(2)):
            best, ev = r["best"], r["ev"]
            col.markdown(f"**The {r['name']} model**")
            m = col.columns(3)
            m[0].metric("best validation loss", f"{best['eval_loss']:.3f}",
                        help=ui.metric_help("eval_loss", f"At epoch {best['tokens'] / r['per_epoch']:.1f}."))
            m[1].metric("validation loss now", f"{ev[-1]['eval_loss']:.3f}",
                        f"{ev[-1]['eval_loss'] - best['eval_loss']:+.3f}", delta_color="inverse")
            m[2].metric("gap (validation − training)", f"{ev[-1]['eval_loss'] - ev[-1]['train_eval_loss']:.3f}")
        if series:
            ui.curve_chart(series, "Training (solid) and validation (dashed) loss",
                           xtitle="epochs over the training text", ytitle="loss (nats per character)",
                           key="sc_over_chart", height=420,
                           notice=overfit_notice(roles, snaps[0]["info"].get("uniform_loss"), False))

    if open:   # a closed tab's charts would be drawn unseen, slowing the run
        ui.live("sc_overfit", draw_over)
    st.info(
        "**The counterpoint.** This is what repeating a tiny text does. When data is *not* repeated, larger models "
        "are the more sample-efficient ones: they reach a given loss with fewer tokens (Kaplan et al. 2020, "
        "section 1.1 and figure 2). And repeating data is cheaper than it looks: up to about "
        f"{laws.MUENNIGHOFF_EPOCHS} "
        "epochs, repeated tokens are worth almost as much as new ones; only with many more does the value of "
        "repetition decay towards zero (Muennighoff et al. 2023, Scaling Data-Constrained Language Models).",
        icon=":material/menu_book:")

# --- 5. smaller models that keep most of the quality ------------------------------------------------
def smaller_models_tab(open: bool) -> None:
    """Keeping most of the quality in fewer parameters: pruning and distillation."""
    st.markdown("Two ways to keep most of a trained model's quality in fewer parameters: **prune** its smallest "
                "weights, or **distil** it into a smaller student that learns from its predicted probabilities.")
    owner = ui.visitor_id()
    trained = {r.path.name: r for r in ui.my_runs("pretrain")
               if r.objective == "clm" and r.config.get("corpus") in ("world", "python-docs")}

    def run_label(name: str) -> str:
        if not name:
            return ("the 200k teacher trained here earlier on Python's docs" if
                    distill.saved_teacher(cfg.part(config.DistillConfig).replace(teacher=""), owner)
                    else "train a new 200k teacher on Python's docs first")
        r = trained[name]
        loss = r.summary.get("eval_loss")
        return (f"{'baked default' if r.baked else r.name} · {r.summary.get('params', 0):,} parameters · "
                f"{r.config.get('corpus')}" + (f" · validation loss {loss:.3f}" if loss else ""))

    def run_picker(label: str, name: str, options: list[str]) -> None:
        key = f"{P}.{name}"
        if options and st.session_state[key] not in options:  # a link to a run this session cannot see
            st.session_state[key] = options[0]
        st.selectbox(label, options, key=key, help=hlp(name), format_func=run_label,
                     placeholder="no trained model yet: run the size sweep first")

    st.subheader("Magnitude pruning")
    st.markdown("Zero the weights with the smallest absolute value (L1 unstructured, `torch.nn.utils.prune`) "
                "in every attention and MLP matrix, at growing sparsity, and measure the loss, with no "
                "retraining. **Global** ranks all matrices together; **per-layer** removes the same share of "
                "each.")
    run_picker("Model to prune", "prune_run", list(trained))
    prune_cfg = cfg.part(config.PruneConfig)
    ui.controls("sc_prune", lambda: [dict(key=prune_cfg.key(), label="Pruning", total_steps=2 * len(prune.SPARSITIES),
                                          max_seconds=limits.MAX_JOB_SECONDS, stage="scaling",
                                          task=Task(prune.run_prune, prune_cfg))], label="Prune")

    def draw_prune(snaps: list[dict]) -> None:
        statuses("sc_prune", snaps)
        s = snaps[0]
        series = []
        for method, color in (("global", "#1f77b4"), ("per-layer", "#ff7f0e")):
            rs = [r for r in s["records"] if r.get("method") == method]
            if rs:
                series.append(dict(name=method, x=[r["measured_sparsity"] for r in rs], y=[r["loss"] for r in rs],
                                   color=color, mode="lines+markers"))
        if not series:
            return
        info = s["info"]
        dense = next((r["loss"] for r in s["records"] if r.get("sparsity") == 0), None)
        ui.curve_chart(series, "Loss against sparsity (no retraining; log scale)",
                       xtitle="share of block weights set to zero", ytitle=LOSS, log_y=True,
                       key="sc_prune_chart",
                       hlines=([(dense, "dense model"), (info["uniform_loss"], "ln V: a uniform guess")]
                               if dense else ()),
                       notice="Read how much can go before the loss leaves the dense model's line: the smallest "
                              "weights carry little, until the curve turns up towards the uniform guess, ln V.")
        st.caption(f"{info['prunable']:,} of the model's {info['params']:,} parameters are in the prunable "
                   "matrices; embeddings and norms stay dense. Zeros save memory and time only with sparse "
                   "storage or kernels, or when whole rows or heads are removed (structured pruning).")

    if open:   # a closed tab's charts would be drawn unseen, slowing the run
        ui.live("sc_prune", draw_prune)

    st.divider()
    st.subheader("Knowledge distillation")
    st.markdown("Train the same small student twice from the same start on the same batches: once on the true "
                "next character only, once also matching the teacher's predicted probabilities "
                "(KL divergence at temperature T, times T²; Hinton, Vinyals & Dean 2015).")
    run_picker("Teacher", "teacher", ["", *trained])
    a, b = st.columns(2)
    a.number_input("Temperature T", 0.5, 20.0, key=f"{P}.temperature", step=0.5, help=hlp("temperature"))
    b.number_input("Soft-target weight", 0.0, 1.0, key=f"{P}.alpha", step=0.1, help=hlp("alpha"))
    with ui.advanced("student settings"):
        a, b, c, d = st.columns(4)
        a.number_input("Student layers", 1, 8, key=f"{P}.st_layers", help=hlp("st_layers"))
        b.number_input("Student width", 16, 256, key=f"{P}.st_width", step=16, help=hlp("st_width"))
        c.number_input("Steps each", 10, 5000, key=f"{P}.st_steps", step=50, help=hlp("st_steps"))
        d.number_input("Learning rate", 1e-5, 0.1, key=f"{P}.st_lr", format="%.4f", step=1e-3, help=hlp("st_lr"))
    dist = cfg.part(config.DistillConfig)
    teacher_run = distill.saved_teacher(dist, owner)
    if teacher_run in trained:
        tc = trained[teacher_run]
        arch, vocab, block = (tc.config.get("arch", "gpt2"), tc.summary.get("vocab_size", 0),
                              tc.config.get("block_size", 64))
    else:
        arch, block = "gpt2", distill.TEACHER["block"]
        vocab = vocab_of(distill.TEACHER["corpus"], block)
    counts = laws.param_counts(arch, dist.st_layers, dist.st_width, vocab, block)
    tokens = dist.st_steps * distill.DISTILL_BATCH * block
    st.caption(f"Student: {counts['total']:,} parameters (N = {counts['non_embedding']:,}; 12·L·d² = "
               f"{counts['estimate']:,}), {tokens:,} training tokens, 6·N·D = "
               f"{laws.train_flops(counts['non_embedding'], tokens):.2e} FLOPs each. "
               + ("" if teacher_run else f"The new teacher (4 layers, width 64) trains {dist.teacher_steps} steps "
                  "first and is saved, so the next run (and the pruning list) reuses it."))
    ui.controls("sc_distill", lambda: [dict(
        key=dist.key(), label="Students", max_seconds=limits.MAX_JOB_SECONDS, stage="scaling",
        total_steps=2 * dist.st_steps + (0 if distill.saved_teacher(dist, owner) else dist.teacher_steps),
        task=Task(distill.run_distill, dist, {"owner": owner}))])

    def draw_distill(snaps: list[dict]) -> None:
        statuses("sc_distill", snaps)
        s = snaps[0]
        series = []
        for role, color in (("teacher", "#bcbd22"), ("from scratch", "#7f7f7f"), ("distilled", "#9467bd")):
            ev = [r for r in s["records"] if r.get("role") == role and "eval_loss" in r]
            if ev:
                series.append(dict(name=role, x=[r["part_step"] for r in ev], y=[r["eval_loss"] for r in ev],
                                   color=color, mode="lines+markers", size=5,
                                   dash="dot" if role == "teacher" else None))
        info = s["info"]
        if series:
            t = info.get("teacher_eval_loss")
            ui.curve_chart(series, "Validation loss (true next character)", xtitle="step", ytitle=LOSS,
                           key="sc_distill_chart", hlines=[(t, f"teacher {t:.3f}")] if t else (),
                           notice="Same student, same start, same batches: the purple one also matches the "
                                  "teacher's probabilities. Compare where the two end, against the teacher's line; "
                                  "at this toy scale the gain, if any, is small.")
        done = {r["role"]: r["eval_loss"] for r in info.get("students", [])}
        if len(done) == 2:
            m = st.columns(3)
            m[0].metric("from scratch", f"{done['from scratch']:.3f}")
            m[1].metric("distilled", f"{done['distilled']:.3f}", f"{done['distilled'] - done['from scratch']:+.3f}",
                        delta_color="inverse")
            m[2].metric("student size", f"{info['student_params'] / info['teacher_params']:.0%} of teacher",
                        help=f"{info['student_params']:,} against {info['teacher_params']:,} parameters")

    if open:   # a closed tab's charts would be drawn unseen, slowing the run
        ui.live("sc_distill", draw_distill)
    st.caption(f"At scale: DistilBERT is {laws.DISTILBERT['smaller']:.0%} smaller and {laws.DISTILBERT['faster']:.0%} "
               f"faster than BERT-base and keeps {laws.DISTILBERT['glue_kept']:.0%} of its GLUE score "
               "(Sanh et al. 2019), trained with this soft-target loss plus masked-language modelling and a "
               "cosine loss between hidden states.")


# Every tab runs (its Train controls start what a one click asked for, and its text is the page's), but
# only the open one draws its live charts: a run watched from the first screen is not slowed by charts
# drawn unseen (a figure costs tens of milliseconds of the job's interpreter lock, twice a second).
TABS = ("Size sweep", "Compute-optimal size", "Budget calculator", "When bigger is not better", "Smaller models")
for tab, draw in zip(st.tabs(TABS, key=f"{P}.tab", on_change="rerun"),
                     (sweep_tab, isoflop_tab, calculator_tab, overfit_tab, smaller_models_tab)):
    with tab:
        draw(bool(tab.open))

# The first screen, drawn last: a one click's jobs have been started by the tabs' controls by now.
with top[0]:
    st.markdown("**Bigger is better: the loss falls along a power law**")
    headline("sc_sweep", "scaling-sweep", law_panel, "Fit a scaling law", SWEEP_DEFAULTS,
             help="Train four GPT-2 sizes from 20k to 500k parameters on the same 150k characters of Python's docs, "
                  "smallest first, and fit the power law: the quick demo, seed 0, within 30 s.",
             recorded_as=lambda d: f"{len(d['info']['plan'])} GPT-2 sizes from {d['info']['plan'][0]['model']} to "
                                   f"{d['info']['plan'][-1]['model']}, {numbers.human(d['stage_config']['tokens'])} "
                                   "characters each")
with top[1]:
    st.markdown("**…until the data runs out: bigger is not always better**")
    headline("sc_overfit", "scaling-overfit", overfit_panel, "Bigger isn't always better", OVERFIT_DEFAULTS,
             help="Train a small and a large GPT-2 on the same 5,000 characters repeated for 60 epochs and watch "
                  "the large one's validation loss turn up: the default settings, seed 0, within 30 s.",
             recorded_as=lambda d: f"a {d['info']['plan'][0]['model']} and a {d['info']['plan'][1]['model']} model "
                                   f"on {d['stage_config']['of_chars']:,} characters for "
                                   f"{d['stage_config']['of_epochs']} epochs")
    st.caption("At scale: Chinchilla (70B parameters) beat Gopher (280B) trained with the same compute (Hoffmann "
               "et al. 2022); see the *Compute-optimal size* and *When bigger is not better* tabs.")
