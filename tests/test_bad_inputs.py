"""Bad input on each page ends in a clear message and a usable page. Rows already covered by the
page tests are listed in bench/RESULTS.md ("Bad input") with their test names, not repeated here."""

import pytest
from apptest import poll, texts
from test_pages import open_page

from engine.core import limits

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
TINY = {"size": "50k", "steps": "40", "eval_every": "20", "sample_every": "40"}


def errors(at) -> str:
    return " ".join(e.value for e in at.error)


@pytest.mark.parametrize("page, key, name, data, says", [
    ("pretraining", "pt_upload", "photo.txt", PNG, "looks like a binary file"),
    ("pretraining", "pt_upload", "notes.txt", "café".encode("latin-1") * 10, "is not UTF-8 text"),
    ("pretraining", "pt_upload", "empty.txt", b"  \n\n", "is empty"),
    ("pretraining", "pt_upload", "big.txt", b"a" * (limits.MAX_UPLOAD_BYTES + 1), "the limit is 5 MB"),
    ("sft", "sft_upload", "photo.jsonl", PNG, "not UTF-8"),
    ("sft", "sft_upload", "big.jsonl", b"{}\n" * (limits.MAX_UPLOAD_BYTES // 3 + 1), "the limit is 5 MB"),
])
def test_bad_uploads_say_why_and_the_page_still_trains(page, key, name, data, says):
    at = open_page(page, {"corpus": "upload"} if page == "pretraining" else {})
    at.file_uploader(key=key).set_value((name, data, "application/octet-stream")).run()
    assert not at.exception and says in errors(at), errors(at)
    assert not at.button(key=f"{'pt' if page == 'pretraining' else 'sft'}_start").disabled


def test_an_upload_too_short_for_the_context_says_how_long_it_must_be():
    at = open_page("pretraining", {"corpus": "upload", "block_size": "256"})
    at.file_uploader(key="pt_upload").set_value(("short.txt", b"A short story. " * 20, "text/plain")).run()
    at.button(key="pt_start").click().run()
    assert "needs at least 2570" in errors(at), errors(at)


def test_a_model_too_large_for_the_time_limit_is_refused_with_the_cap():
    at = open_page("pretraining", {**TINY, "size": "custom", "n_layer": "12", "n_embd": "512", "block_size": "256"})
    at.button(key="pt_start").click().run()
    poll(at, lambda a: "too large" in errors(a))
    assert f"at most {limits.MAX_PARAMS / 1e6:.0f}M" in errors(at)
    assert not at.button(key="pt_start").disabled


def test_link_values_a_widget_cannot_show_are_clamped_with_a_notice():
    at = open_page("pretraining", {"steps": "100000", "lr": "0.005", "block_size": "100", "vocab_size": "8192",
                                   "tokenizer": "bpe"})
    assert at.number_input(key="pt.steps").value == 20000 and at.select_slider(key="pt.lr").value == 0.003
    assert at.select_slider(key="pt.block_size").value == 128 and at.slider(key="pt.vocab_size").value == 4096
    assert len(at.toast) == 4 and all("using" in t.value for t in at.toast)


def test_stopping_mid_way_keeps_the_model_so_far_and_train_works_again():
    at = open_page("pretraining", {**TINY, "steps": "20000", "max_seconds": "60"})
    at.button(key="pt_start").click().run()
    poll(at, lambda a: any(m.label == "training loss" and m.value != "–" for m in a.metric))
    at.button(key="pt_stop").click().run()
    poll(at, lambda a: "stopped by you; the model so far was saved" in texts(a))
    assert "Use the trained model" in [s.value for s in at.subheader]
    assert not at.button(key="pt_start").disabled


def test_clicking_train_again_and_again_runs_one_job_at_a_time():
    from app_pages import ui
    at = open_page("pretraining", TINY)
    for seed in ("1", "2"):
        at.number_input(key="pt.seed").set_value(int(seed)).run()
        at.button(key="pt_start").click().run()
        assert at.button(key="pt_start").disabled          # a second click cannot reach the server
        assert sum(j.active for j in ui.runner().jobs.values()) == 1
        poll(at, lambda a: "finished" in texts(a) and not a.button(key="pt_start").disabled)
    visitor = at.query_params["v"]
    assert len(ui.visitors().jobs(visitor, "pt")) == 1 and not at.exception


def test_switching_pages_during_a_run_keeps_the_run_and_the_per_person_cap_says_so():
    at = open_page("pretraining", {**TINY, "objective": "both", "steps": "20000", "max_seconds": "30"})
    at.button(key="pt_start").click().run()             # two jobs: this person's whole allowance
    at.switch_page("app_pages/sft.py").run()
    at.button(key="sft_start").click().run()
    assert f"the limit is {limits.MAX_JOBS_PER_SESSION} per person" in errors(at), errors(at)
    at.switch_page("app_pages/pretraining.py").run()
    assert not at.exception and at.button(key="pt_stop").disabled is False   # still running, still stoppable
    at.button(key="pt_stop").click().run()
    poll(at, lambda a: texts(a).count("stopped by you") == 2)


def test_sft_with_no_rows_says_what_to_add():
    at = open_page("sft", {"families": ""})
    at.button(key="sft_start").click().run()
    poll(at, lambda a: "fewer than two training rows: add rows with split 'train' or pick task families" in errors(a))
    assert not at.button(key="sft_start").disabled


def test_a_link_asking_for_more_epochs_than_the_slider_shows_opens_the_page():
    at = open_page("scaling", {"of_epochs": "500"})
    assert not at.exception and at.slider(key="sc.of_epochs").value == 500
