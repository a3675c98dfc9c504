"""Uploads are read as data only, and a person's text shown inside HTML stays text.

Covered elsewhere and not repeated here: bertviz's views with a "</script>" token
(test_attention.py, test_page_attention.py), the Data page's tokenizer lab
(test_page_data.py::test_tokenizer_lab_escapes_the_users_text), the SFT token view's
"<|user|>" (test_page_sft.py)."""
import re
from pathlib import Path

import pytest
import torch
from apptest import open_page, poll, texts

from engine.attention.bertviz_offline import head_view_html, model_view_html
from engine.core.config import UserError
from engine.data import crawl
from engine.text import instructions

ROOT = Path(__file__).resolve().parent.parent
XSS = ['<img src=x onerror="window.pwned=1">', "<script>window.pwned=2</script>", "<svg onload=alert(3)>"]
CODE = [p for d in ("engine", "app_pages") for p in (ROOT / d).glob("*.py")] + [ROOT / "app.py"]
# unsafe_allow_html call sites read line by line: every piece of text in them goes through html.escape.
REVIEWED_HTML = {"app_pages/pipeline.py"}


@pytest.mark.parametrize("pattern, why", [
    (r"\bpickle\b|\bdill\.load|\bjoblib\.load|allow_pickle\s*=\s*True", "pickle runs code while loading"),
    (r"torch\.load\((?![^)]*weights_only\s*=\s*True)", "torch.load without weights_only=True unpickles"),
    (r"trust_remote_code\s*=\s*True", "runs a model repository's own Python"),
    (r"(?<![\w.])(eval|exec)\(", "runs text as code"),
    (r"unsafe_allow_html\s*=\s*True", "renders raw HTML from a string"),
])
def test_no_code_path_runs_what_a_person_uploads(pattern, why):
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in CODE for i, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(pattern, line.split("#")[0])
            and not ("unsafe" in pattern and str(p.relative_to(ROOT)) in REVIEWED_HTML)]
    assert not hits, f"{why}: {hits}"


@pytest.mark.parametrize("name", ["../../etc/passwd.txt", "/tmp/x/../../evil.jsonl", "a\\..\\b.csv"])
def test_upload_names_are_labels_never_paths(name):
    data = b'{"text": "hello there"}\n' if name.endswith(".jsonl") else b"text\nhello there\n"
    if name.endswith(".txt"):
        data = b"hello there\n"
    got = crawl.read_documents(data, name)
    assert got.dataset["text"] == ["hello there"]


@pytest.mark.parametrize("reader", [lambda b: crawl.read_documents(b, "deep.jsonl"), instructions.parse_jsonl])
def test_deeply_nested_json_is_a_bad_line_not_a_crash(reader):
    deep = b"[" * 100_000 + b"\n"
    good = b'{"text": "fine", "prompt": "Repeat: red hat", "completion": "red hat"}\n'
    try:
        items = reader(deep + good)
    except UserError:
        return                                   # refused with a message: fine too
    assert items                                  # the good line is still read


def test_bertviz_views_keep_html_in_tokens_as_text():
    attn = torch.softmax(torch.randn(2, 3, 4, 4), -1)
    tokens = XSS + ["ok"]
    for page in (head_view_html(attn, tokens), model_view_html(attn, tokens)):
        lowered = page.lower()
        assert "<img" not in lowered and "<svg onload" not in lowered and "window.pwned=2</script>" not in lowered
        assert lowered.count("</script") == 4    # jQuery, d3, the loader, bertviz: none from a token


def test_pretraining_samples_and_generations_show_html_as_text():
    """Train on a text made of HTML: the samples and a generation from the trained model are
    shown through markdown with every "<" escaped."""
    at = open_page("app_pages/pretraining.py", {"corpus": "upload", "size": "50k", "steps": "40",
                                                "eval_every": "20", "sample_every": "20", "block_size": "32"})
    at.session_state["_pt_text"] = ("x.txt", ("".join(XSS) + " a cat sat.\n") * 60)
    at.run()
    at.button(key="pt_start").click().run()
    poll(at, lambda a: "finished" in texts(a) and any(t.key and t.key.startswith("pt_prompt_") for t in a.text_input))
    prompt = next(t for t in at.text_input if t.key.startswith("pt_prompt_"))
    prompt.input(XSS[0]).run()
    gen = next(b for b in at.button if b.key and b.key.startswith("pt_gen_"))
    gen.click().run()
    shown = [m.value for m in at.markdown if m.value.startswith(("step ", "> "))]
    assert any(v.startswith("> ") for v in shown) and any(v.startswith("step ") for v in shown), shown
    for v in shown:
        assert not re.search(r"(?<!\\)<", v), v   # every "<" escaped: shown as a character, never a tag
    assert not at.exception
