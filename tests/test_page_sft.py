"""AppTest of the SFT page: renders, trains from a link, shows before/after, reports bad input."""
import json

import apptest
from apptest import poll, texts

from engine.text import instructions


def open_page(params: dict | None = None):
    return apptest.open_page("app_pages/sft.py", params, timeout=60)


def test_page_shows_the_data_the_template_and_the_masked_tokens():
    at = open_page()
    assert [h.value for h in at.header][:2] == ["The instruction data", "The chat template"]
    assert "facts 135 training / 45 validation" in texts(at)
    view = at.get("html")[0].proto.body
    assert "&lt;|user|&gt;" in view and "<|user|>" not in view           # tokens shown as escaped text
    first = instructions.build(0, 1000)[0]                                # the row shown: the table's first
    assert view.count("#bbf7d0") == len(first.completion) + 1             # answer characters and <eos> count
    at.toggle(key="sft.mask_prompt").set_value(False).run()
    assert at.get("html")[0].proto.body.count("#e5e7eb") == 1             # unmasked: only the first token is grey
    assert at.query_params["mask_prompt"] in ("0", ["0"])


def test_short_run_from_a_link_streams_metrics_and_shows_before_and_after():
    at = open_page({"families": "label", "n_train": "60", "steps": "40", "eval_every": "20"})
    assert at.number_input(key="sft.steps").value == 40                   # the link's settings reach the widgets
    at.button(key="sft_start").click().run()
    poll(at, lambda a: "finished" in texts(a))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["validation accuracy"] != "–" and float(metrics["validation loss"]) < 5
    assert metrics["loss on the base's stories"] != "–"
    table = next(d.value for d in at.dataframe if "tuned (greedy)" in d.value.columns)
    assert len(table) == 3 and table["tuned (greedy)"].str[0].isin(["✓", "✗"]).all()
    assert "parent `pretrain-base-gpt`" in texts(at)
    assert sorted(b.label for b in at.get("download_button")) == ["Download metrics (CSV)", "Download model (zip)"]


def test_bad_jsonl_lines_are_reported_and_the_rest_used():
    at = open_page({"families": ""})
    rows = [json.dumps({"prompt": "Repeat: red hat", "completion": "red hat"}), "{broken",
            json.dumps({"messages": [{"role": "user", "content": "Repeat: cup"}, {"role": "assistant", "content": "cup"}]}),
            json.dumps({"prompt": "Repeat: box", "completion": ""})]
    at.file_uploader(key="sft_upload").set_value(("rows.jsonl", "\n".join(rows).encode(), "application/jsonl")).run()
    assert not at.exception
    assert any("2 rows added" in s.value for s in at.success)
    warning = " ".join(w.value for w in at.warning)
    assert "line 2: not a JSON object" in warning and "line 4: the answer is empty" in warning
    assert "upload 2 training / 0 validation" in texts(at)


def test_characters_the_base_cannot_encode_block_training_with_a_clear_message():
    at = open_page({"families": "copy"})
    at.file_uploader(key="sft_upload").set_value(
        ("fr.jsonl", json.dumps({"prompt": "Repeat: café", "completion": "café"}).encode(), "application/jsonl")).run()
    assert any("cannot encode 'é'" in e.value for e in at.error)
    at.button(key="sft_start").click().run()
    assert any("Fix the data first" in e.value for e in at.error)

