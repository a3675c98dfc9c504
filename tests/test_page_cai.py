"""AppTest of the constitutional AI page: renders the recorded payoff and the constitution, refuses bad
constitutions with a message, runs a short pipeline from a link with a bar from the first second and
shows the result, the judge's errors, the trace and the comparison."""
import json

import apptest
from apptest import poll, texts

from engine.cai import config as cai
from engine.cai import constitution as C

QUICK = {"judge_examples": "8", "n_samples": "2", "sl_steps": "60", "sl_helpful": "50", "n_pairs": "40",
         "dpo_steps": "10", "max_seconds": "240"}
HEADERS = ["1 · The constitution", "2 · SL-CAI, traced", "3 · What the run measured",
           "4 · The starting point, and what the toy stands in for"]


def open_page(params: dict | None = None):
    return apptest.open_page("app_pages/cai.py", params, timeout=120)


def test_page_shows_the_constitution_how_the_judge_reads_it_and_the_paper():
    at = open_page()
    assert [h.value for h in at.header] == HEADERS
    reads = next(d.value for d in at.dataframe if "the judge reads it as" in d.value.columns)
    assert list(reads["the judge reads it as"]) == [name for name, _, _ in C.KNOWN.values()]
    paper = next(d.value for d in at.dataframe if "kind" in d.value.columns and "text" in d.value.columns)
    assert paper["text"].str.contains("harmful, unethical, racist").any()
    assert "arXiv:2212.08073" in texts(at)
    start = next(d.value for d in at.dataframe if "helpful-only answer" in d.value.columns)
    assert (start["breaks"] != "—").any()                      # the starting point really breaks the rules
    red = next(d.value for d in at.dataframe if "split" in d.value.columns)
    assert set(red["split"]) == {"training", "validation"}      # one word per split


def test_the_recorded_demo_fills_the_trace_and_the_measurements_before_any_run():
    at = open_page()
    page = texts(at)
    assert "Recorded with the quick-demo settings, seed 0" in page and "not live" in page
    assert "From the recorded quick demo (seed 0)" in page
    assert "2 · Critique (the judge):" in page and "3 · Revision:" in page
    prompts = [m.value for m in at.markdown if m.value.startswith("**Prompt:**")]
    assert len(prompts) == 6 and any("secret" in p for p in prompts) and any("Insult" in p for p in prompts)
    trade = next(d.value for d in at.dataframe if "helpful accuracy" in d.value.columns)
    assert list(trade["model"]) == ["helpful-only (start)", "after SL-CAI", "after RLAIF"]
    violations = [float(v.rstrip("%")) for v in trade["violations"]]
    assert violations[0] >= 80 and violations[-1] <= violations[0] / 2   # the recorded point: violations fall


def test_empty_constitution_and_blank_principle_are_refused_before_training():
    at = open_page({"constitution": "[]"})
    assert any("constitution is empty" in e.value for e in at.error)
    at.button(key="cai_start").click().run()
    assert any("Fix the constitution first" in e.value for e in at.error)
    at = open_page({"constitution": json.dumps([["kind", "Do not insult anyone."], ["blank", " "]])})
    assert any("Principle 2 has no text" in e.value for e in at.error)


def test_a_principle_the_judge_cannot_score_is_flagged():
    at = open_page({"constitution": json.dumps([["kind", "Do not insult anyone."], ["French", "Always answer in French."]])})
    assert any("cannot score 'French'" in w.value for w in at.warning)


def test_short_run_from_a_link_shows_a_bar_at_once_streams_the_result_and_keeps_its_constitution():
    at = open_page(QUICK)
    assert at.number_input(key="cai.sl_steps").value == 60
    at.button(key="cai_start").click().run()
    assert at.get("progress")                                    # a bar in the very run that started the job
    poll(at, lambda a: any("phase" in p.proto.text for p in a.get("progress")), timeout=30)
    bar = next(p.proto.text for p in at.get("progress") if "phase" in p.proto.text)
    assert "phase 1 of 8" in bar and "train the AI feedback model" in bar, bar
    # Edit the constitution mid-run: the run keeps the version it started with, and says so.
    at.session_state["cai.constitution"] = cai.constitution_json(C.default_constitution()[:3])
    poll(at, lambda a: "finished" in texts(a) or any("failed" in e.value for e in a.error), timeout=400)
    assert not any(e.value for e in at.error), [e.value for e in at.error]
    page = texts(at)
    assert "uses the constitution as it was when you pressed Train" in page
    assert "From your run" in page
    trade = next(d.value for d in at.dataframe if "helpful accuracy" in d.value.columns)
    assert list(trade["model"]) == ["helpful-only (start)", "after SL-CAI", "after RLAIF"]
    # The judge's measured agreement, and its errors listed exactly when it made some.
    agreement = float(next(m.value for m in at.metric if m.label == "agreement, all").rstrip("%")) / 100
    assert 0.5 < agreement <= 1.0
    assert ("Where it is wrong" in page) == (agreement < 1.0)
    assert "2 · Critique (the judge):" in page and "3 · Revision:" in page
    vs = next(d.value for d in at.dataframe if "RLAIF (AI judge)" in d.value.columns)
    assert "labels per minute" in list(vs[""])
    assert sorted(b.label for b in at.get("download_button")) == ["Download metrics (CSV)", "Download model (zip)"]
    done = "✓ train the AI feedback model"                      # every phase listed, with its time
    assert any(done in m.value for m in at.markdown)
