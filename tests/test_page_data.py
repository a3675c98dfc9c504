"""The Data page: sources, the cleaning funnel, bad input, the quality model, the tokenizer lab
and "what cleaning buys" (AppTest), plus the engine glue it stands on."""
import json
import math
import time

import apptest
import pytest
from apptest import poll, texts
from streamlit.testing.v1 import AppTest

from engine.core.config import UserError
from engine.core.limits import MAX_UPLOAD_BYTES
from engine.core.report import Recorder
from engine.core.tokenizer import bpe_tokenizer, encode
from engine.data.cleaning import clean, train_texts
from engine.data.compare import CompareConfig, compare
from engine.data.config import DataConfig
from engine.data.crawl import CrawlConfig, build_crawl
from engine.data.lab import truncate_bpe
from engine.data.scale import scale_rows

SMALL = {"n_docs": "400"}  # a small crawl keeps each pipeline run near a second
FAST = {**SMALL, "compare_steps": "20", "compare_eval_every": "10", "compare_budget": "20000",
        "compare_size": "50k"}


def open_page(params: dict | None = None):
    return apptest.open_page("app_pages/data.py", params, timeout=120)


def chart(at: AppTest, key: str) -> dict:
    return json.loads(next(c for c in at.get("plotly_chart") if key in c.proto.id).proto.spec)


def funnel(at: AppTest) -> list[int]:
    return chart(at, "dt_funnel")["data"][0]["x"]


def frame(at: AppTest, column: str):
    """The table with this column (st.dataframe has no id in AppTest unless it is selectable)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


# ---------------------------------------------------------------- the page

def test_page_renders_every_section_and_puts_settings_in_the_url():
    at = open_page(SMALL)
    assert [h.value for h in at.header] == ["What cleaning buys", "Sources and mixture", "The cleaning pipeline",
                                            "Model-based quality filtering", "Tokenizer lab", "Scale in context"]
    docs = funnel(at)
    assert docs[0] == 400 and docs == sorted(docs, reverse=True) and docs[-1] < docs[0]
    sources = frame(at, "documents kept")
    assert {"python-docs", "stdlib-code", "world", "web"} == set(sources["source"])
    assert (sources["tokens"] >= sources["words"]).all()
    scores = frame(at, "recall")
    assert {"word_count", "exact_dedup", "near_dedup", "pii", "all_filters"} <= set(scores["filter"])
    cited = " ".join(frame(at, "how the token figure was made")["source"])
    assert "Brown et al. 2020" in texts(at) and "Penedo et al. 2024" in cited and "Devlin et al. 2019" in cited
    assert at.query_params["min_words"] in ("50", ["50"]) and at.query_params["n_docs"] in ("400", ["400"])


def test_changing_a_threshold_moves_the_funnel():
    at = open_page(SMALL)
    before = funnel(at)
    at.slider(key="dt.min_words").set_value(200).run()
    assert not at.exception
    after = funnel(at)
    assert after[0] == before[0] and after[-1] < before[-1]
    assert at.query_params["min_words"] in ("200", ["200"])


def test_filters_that_leave_no_documents_say_so_and_the_page_stays_usable():
    at = open_page({**FAST, "heuristics_on_code": "1", "min_words": "1000"})
    assert any("No documents are left after 'word_count'" in w.value for w in at.warning)
    assert funnel(at)[-1] == 0 and frame(at, "documents kept")["documents kept"].sum() == 0
    at.button(key="dt_compare_start").click().run()
    poll(at, lambda a: "Too little text" in texts(a))               # the experiment explains, not crashes
    at.slider(key="dt.min_words").set_value(50).run()                # and the page recovers
    assert not any("No documents are left" in w.value for w in at.warning) and funnel(at)[-1] > 0


def test_link_values_outside_a_widget_are_clamped_or_snapped():
    at = open_page({**SMALL, "min_words": "5000", "compare_seed": "-3", "compare_lr": "0.0021"})
    assert at.slider(key="dt.min_words").value == 1000
    assert at.number_input(key="dt.compare_seed").value == 0
    assert at.select_slider(key="dt.compare_lr").value == 2e-3


def test_raw_vs_clean_streams_two_validation_curves():
    at = open_page(FAST)
    at.button(key="dt_compare_start").click().run()
    poll(at, lambda a: "Raw vs cleaned: finished" in texts(a))
    curves = {s["name"]: s for s in chart(at, "dt_compare_curve")["data"]}
    val = [n for n in curves if "validation" in n]
    assert sorted(val) == ["cleaned: validation loss", "raw: validation loss"]
    assert all(len(curves[n]["y"]) == 3 for n in val)                # steps 0, 10, 20
    final = {m.label: float(m.value) for m in at.metric if m.label.endswith("validation loss")}
    assert set(final) == {"raw crawl: validation loss", "cleaned crawl: validation loss"}
    if final["cleaned crawl: validation loss"] < final["raw crawl: validation loss"]:  # the page says which way
        assert any("The model trained on cleaned text ends" in m.value for m in at.success)
    else:
        assert any("did **not** end lower" in m.value for m in at.warning)


def test_quality_model_runs_as_a_job_and_joins_the_table():
    at = open_page({**SMALL, "quality_n_train": "20"})
    at.button(key="dt_quality_start").click().run()
    poll(at, lambda a: "quality_model" in set(frame(a, "recall")["filter"]), timeout=120)
    row = frame(at, "recall").set_index("filter").loc["quality_model"]
    assert row["precision"] > 0.5 and row["recall"] > 0.5
    at_half = row["flagged"]
    at.slider(key="dt.quality_threshold").set_value(0.95).run()      # the threshold needs no new job
    assert frame(at, "recall").set_index("filter").loc["quality_model", "flagged"] <= at_half


def test_uploads_broken_jsonl_lines_are_reported_by_number_and_good_lines_used():
    at = open_page(SMALL)
    lines = [json.dumps({"text": f"An uploaded document number {i} about rivers, boats and the sea."})
             for i in range(30)]
    lines[3], lines[7] = "{broken", "[1, 2]"
    at.file_uploader(key="dt_file").set_value(("mine.jsonl", "\n".join(lines).encode(), "application/json")).run()
    assert any("line 4, 8" in w.value for w in at.warning)
    assert "28 documents" in texts(at)
    at.slider(key="dt.w_upload").set_value(0.3).run()
    assert "upload" in set(frame(at, "documents kept")["source"])


@pytest.mark.parametrize("name, data, says", [
    ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ("notes.txt", "café".encode("latin-1") + b" au lait", "not UTF-8"),
    ("big.jsonl", b"x" * (MAX_UPLOAD_BYTES + 1), "the limit is"),
])
def test_bad_uploads_get_a_clear_message(name, data, says):
    at = open_page(SMALL)
    at.file_uploader(key="dt_file").set_value((name, data, "application/octet-stream")).run()
    assert not at.exception
    assert any(says in e.value for e in at.error), [e.value for e in at.error]
    assert funnel(at)[0] == 400                                      # the page still works


def test_hub_dataset_offline_says_so_at_once():
    at = open_page(SMALL)
    at.text_input(key="dt.hub_name").input("someone/dataset")
    t = time.time()
    at.button(key="dt_hub_load").click().run()
    assert time.time() - t < 10
    assert any("Cannot reach the Hugging Face hub" in e.value for e in at.error)


def test_tokenizer_lab_escapes_the_users_text():
    at = open_page(SMALL)
    at.text_area(key="dt_own").input("<script>alert(1)</script> <b>bold</b> def f(x): return x").run()
    body = at.get("html")[0].proto.body
    assert body.count("&lt;") == 4 and "<script" not in body and "<b>" not in body   # shown, never run
    tpw = frame(at, "tokens per word (BPE)").set_index("source")
    assert tpw.loc["stdlib-code", "tokens per word (BPE)"] > tpw.loc["world", "tokens per word (BPE)"]


# ---------------------------------------------------------------- the engine glue

def test_compare_job_gives_two_curves_on_the_same_heldout_text():
    ds = build_crawl(CrawlConfig(n_docs=300, seed=2))
    texts_ = train_texts(ds, clean(ds), budget=15_000)
    cfg = CompareConfig(steps=12, eval_every=6, batch_size=8, block_size=32, size="50k")
    job = Recorder()
    compare(cfg, job, texts_)
    curves = {run: [r for r in job.records if r.get("run") == run and "eval_loss" in r] for run in ("raw", "cleaned")}
    assert [r["part_step"] for r in curves["raw"]] == [r["part_step"] for r in curves["cleaned"]] == [0, 6, 12]
    # Same seed, same vocabulary, same held-out windows: identical untrained models score identically.
    assert curves["raw"][0]["eval_loss"] == curves["cleaned"][0]["eval_loss"]
    assert curves["raw"][-1]["eval_loss"] != curves["cleaned"][-1]["eval_loss"]   # but they learn different text
    assert set(job.info["final"]) == {"raw", "cleaned"} and job.info["heldout_chars"] > 0
    assert max(r["step"] for r in job.records) == 2 * cfg.steps                  # progress spans both runs


def test_compare_refuses_unequal_budgets_when_a_model_hits_its_time_limit():
    ds = build_crawl(CrawlConfig(n_docs=300, seed=2))
    job = Recorder()
    with pytest.raises(UserError, match="time limit"):
        compare(CompareConfig(steps=10, size="50k", max_seconds=0), job, train_texts(ds, clean(ds), budget=15_000))
    assert "cleaned" not in {r.get("run") for r in job.records}       # the second model never started


def test_truncated_bpe_equals_a_smaller_training():
    text = " ".join(build_crawl(CrawlConfig(n_docs=100))["text"])[:60_000]
    big = bpe_tokenizer(text, 1024)
    small = truncate_bpe(big, 400)
    assert len(small) == 400
    assert encode(small, text) == encode(bpe_tokenizer(text, 400), text)


def test_data_config_round_trips_through_the_url_and_splits_into_engine_configs():
    cfg, problems = DataConfig.from_params({"min_words": "80", "cleaning_seed": "7", "quality_seed": "3",
                                            "compare_steps": "20", "seed": "5"})
    assert not problems
    assert cfg.part("cleaning").min_words == 80 and cfg.part("cleaning").seed == 7
    assert cfg.part("quality").seed == 3 and cfg.part("compare").steps == 20 and cfg.part("crawl").seed == 5
    assert DataConfig.from_params(cfg.to_params())[0] == cfg


def test_scale_rows_cite_every_published_figure():
    rows = scale_rows(1_000, 800)
    assert all(r["source"] and r["tokens"] > 0 for r in rows)
    assert math.isclose(next(r for r in rows if r["dataset"].startswith("GPT-3"))["tokens"], 410e9)
