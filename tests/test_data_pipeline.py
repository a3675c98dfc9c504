"""The Data page's engine: sources, the labelled crawl, each cleaning filter, the quality model."""
import io
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402
import pytest  # noqa: E402

from engine.core.config import UserError  # noqa: E402
from engine.core.limits import MAX_UPLOAD_BYTES  # noqa: E402
from engine.data.cleaning import (  # noqa: E402
    CleaningConfig,
    clean,
    failures,
    normalize,
    precision_recall,
    stats,
    train_texts,
)
from engine.data.crawl import (  # noqa: E402
    LABELS,
    CrawlConfig,
    build_crawl,
    read_documents,
    source_table,
    to_dataset,
    with_tokens,
)

datasets.disable_progress_bars()

PROSE = ("The river runs past the old mill and into the town, where the children wait for the boats.\n"
         "Every spring the water rises, and the people of the town have learned to live with it.\n"
         "They keep their boats by the door and their bread on the high shelf, and they do not complain.\n"
         "When the water falls again, they clean the streets and plant the gardens that the flood made rich.\n"
         "It is a hard life, but it is theirs, and they would not trade it for one that was easier.")
OTHER = ("A small bakery on the corner opens at six, and the smell of warm bread fills the street.\n"
         "The baker has worked there for thirty years and knows the name of every child who comes in.\n"
         "On Fridays she makes a sweet loaf with raisins that sells out before the church bells ring.\n"
         "Her son wants to sell coffee too, but she says that a shop should do one thing and do it well.\n"
         "Most mornings there is a line at the door before the lights are on, even when it rains.")


def run(texts, **cfg):
    return clean(to_dataset(texts, "test", ["clean"] * len(texts)), CleaningConfig(**cfg))


def fails(text, **cfg):
    return set(failures(stats(normalize(text)), CleaningConfig(**cfg)))


# ---------------------------------------------------------------- each filter

def test_clean_prose_passes_every_heuristic():
    assert fails(PROSE) == set() and fails(OTHER) == set()


@pytest.mark.parametrize("rule, text", [
    ("word_count", "Too short to be a page. Really."),
    ("word_length", " ".join(["https://example.com/a/very/long/path/to/somewhere.html"] * 60) + "."),
    ("symbols", "".join(f'<div class="row"><span>{line}</span></div>' for line in PROSE.split("\n"))),
    ("line_punct", "\n".join(f"Menu item number {i} goes here and there" for i in range(60))),
    ("stop_words", "Die Kinder spielen im Garten, während es draußen regnet. " * 12),
    ("repeated_lines", "\n".join(["Read more about this story in our weekly newsletter today."] * 8 + [PROSE])),
])
def test_each_heuristic_trips_on_its_junk(rule, text):
    assert rule in fails(text)


def test_code_skips_prose_heuristics_unless_asked():
    code = "def f(x):\n    return {k: v for k, v in x}  # a dict\n" * 10
    ds = to_dataset([code], "stdlib-code", "clean")
    assert len(clean(ds).dataset) == 1
    assert len(clean(ds, CleaningConfig(heuristics_on_code=True)).dataset) == 0


def test_normalize_nfc_and_whitespace():
    assert normalize("Cafe\u0301  \r\nx\u00a0y\t \n\n\n\nend  ") == "Café\nx y\n\nend"
    assert normalize("    indented code\n") == "    indented code"  # indentation is kept


def test_exact_dedup_catches_copies_that_differ_only_in_bytes():
    variant = PROSE.replace("\n", " \r\n")  # trailing spaces and CRLF
    res = run([PROSE, variant, OTHER])
    assert res.dataset["id"] == [0, 2]
    assert res.removed[0]["stage"] == "exact_dedup" and "document 0" in res.removed[0]["reason"]
    assert len(run([PROSE, variant, OTHER], normalize=False, near_dedup=False).dataset) == 3  # why normalise


def test_near_dedup_catches_small_edits_and_keeps_different_text():
    edited = PROSE.replace("old mill", "old red mill").replace("thirty", "forty") + "\nUpdated in May 2021."
    res = run([PROSE, OTHER, edited], exact_dedup=False)
    assert res.dataset["id"] == [0, 1]
    assert res.removed[0]["stage"] == "near_dedup" and "document 0" in res.removed[0]["reason"]
    assert len(run([PROSE, OTHER, edited], near_dedup=False).dataset) == 3


def test_pii_redaction_counts_and_spares_years_and_versions():
    text = PROSE + "\nWrite to anna.smith@example.org or call +44 20 7946 0958 or (555) 123-4567 today."
    harmless = OTHER + "\nCopyright 2006-2009, Python 3.11.7, dated 2021-03-04, host 192.168.0.1."
    res = run([text, harmless])
    assert res.redacted == {"emails": 1, "phones": 2, "documents": 1}
    assert "<EMAIL>" in res.dataset["text"][0] and "<PHONE>" in res.dataset["text"][0]
    assert "anna.smith" not in res.dataset["text"][0]
    assert res.dataset["text"][1] == normalize(harmless)


def test_zero_survivors_gives_a_message_not_a_crash():
    calls = []
    res = clean(to_dataset([PROSE, OTHER], "test", "clean"), CleaningConfig(min_words=10_000),
                progress=lambda f, stage: calls.append((f, stage)))
    assert len(res.dataset) == 0
    assert calls[-1] == (1.0, "done") and [f for f, _ in calls] == sorted(f for f, _ in calls)
    assert "word_count" in res.message and "Loosen" in res.message
    assert res.funnel[-1]["documents"] == 0 and res.funnel[-1]["tokens"] == 0


def test_precision_recall_on_a_hand_made_case():
    flagged = [True, True, True, False, False, False]
    labels = ["spam", "spam", "clean", "spam", "clean", "markup"]
    r = precision_recall(flagged, labels, ("spam", "markup"))
    assert (r["tp"], r["fp"], r["fn"]) == (2, 1, 2)
    assert r["precision"] == pytest.approx(2 / 3) and r["recall"] == pytest.approx(0.5)
    assert precision_recall([False], ["clean"], ("spam",))["precision"] is None  # nothing flagged


# ---------------------------------------------------------------- the crawl and the whole pipeline

@pytest.fixture(scope="module")
def crawl_and_result():
    ds = build_crawl(CrawlConfig())
    return ds, clean(ds)


def test_crawl_has_every_label_and_is_reproducible(crawl_and_result):
    ds, _ = crawl_and_result
    assert set(ds["label"]) == set(LABELS)
    small = CrawlConfig(n_docs=300, seed=3)
    assert build_crawl(small)[:] == build_crawl(small)[:]
    assert build_crawl(small)["text"] != build_crawl(small.replace(seed=4))["text"]
    for i, p in zip(ds["id"], ds["parent"]):  # a copy always comes after its original
        assert p < i


def test_source_table_counts_documents_words_tokens_and_what_cleaning_kept(crawl_and_result):
    ds, res = crawl_and_result
    counted = with_tokens(ds)
    kept = counted.filter(lambda d: d["id"] in set(res.dataset["id"]))
    rows = {r["source"]: r for r in source_table(counted, kept)}
    assert set(rows) == {"python-docs", "stdlib-code", "world", "web"}
    assert sum(r["documents"] for r in rows.values()) == len(ds)
    assert sum(r["documents kept"] for r in rows.values()) == len(res.dataset)
    assert all(r["tokens"] >= r["words"] > 0 and r["tokens kept"] <= r["tokens"] for r in rows.values())


def test_pipeline_funnel_removals_and_scores(crawl_and_result):
    ds, res = crawl_and_result
    docs = [f["documents"] for f in res.funnel]
    assert docs == sorted(docs, reverse=True) and docs[0] == len(ds)
    assert len(ds) - docs[-1] == len(res.removed) and not res.message
    assert all(r["reason"] for r in res.removed)
    scores = {s["filter"]: s for s in res.scores}
    assert {"word_count", "stop_words", "any_heuristic", "exact_dedup", "near_dedup", "pii",
            "all_filters"} <= set(scores)
    assert scores["exact_dedup"]["recall"] == 1.0 and scores["pii"]["recall"] > 0.9
    assert scores["all_filters"]["precision"] > 0.8 and scores["all_filters"]["recall"] > 0.9


def test_train_texts_same_budget_and_unseen_heldout(crawl_and_result):
    ds, res = crawl_and_result
    tt = train_texts(ds, res, budget=200_000)
    assert len(tt.raw) == len(tt.cleaned) == tt.budget == 200_000
    held = [t for i, t in zip(ds["id"], ds["text"]) if i in set(tt.heldout_ids)]
    assert len(held) == 100 and all(h in tt.heldout for h in held)
    assert not any(h in tt.raw or h in tt.cleaned for h in held)
    copies = [i for i, p in zip(ds["id"], ds["parent"]) if p in set(tt.heldout_ids)]
    assert copies and not any(ds[i]["text"] in tt.raw for i in copies)
    assert "Asked for" in train_texts(ds, res, budget=10**9).note


def test_train_texts_token_budget(crawl_and_result):
    from engine.core.tokenizer import bpe_tokenizer, encode

    ds, res = crawl_and_result
    tok = bpe_tokenizer("\n".join(ds["text"][:300]), 300)
    tt = train_texts(ds, res, budget=20_000, tok=tok)
    assert tt.unit == "tokens" and len(encode(tok, tt.raw)) == len(encode(tok, tt.cleaned)) == 20_000


# ---------------------------------------------------------------- uploads

def test_jsonl_with_broken_lines_uses_the_good_ones():
    lines = [json.dumps({"text": "first document"}), "{broken", json.dumps({"text": "second one"}),
             "", "[1, 2]", json.dumps({"text": "third"})]
    up = read_documents("\n".join(lines).encode(), "data.jsonl")
    assert up.dataset["text"] == ["first document", "second one", "third"]
    assert up.bad_lines == [2, 5]


def test_txt_csv_parquet_uploads():
    assert read_documents(b"one doc\nanother doc\n", "a.txt").dataset["text"] == ["one doc", "another doc"]
    assert len(read_documents(b"para one\nstill one\n\npara two\n", "a.txt").dataset) == 2
    assert read_documents(b"id,body\n1,hello there\n2,second row\n", "a.csv").dataset["text"] == \
        ["hello there", "second row"]
    buf = io.BytesIO()
    datasets.Dataset.from_dict({"text": ["a parquet row", "another"]}).to_parquet(buf)
    assert read_documents(buf.getvalue(), "a.parquet").dataset["text"] == ["a parquet row", "another"]


@pytest.mark.parametrize("data, name, says", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image.txt", "binary"),
    ("café".encode("latin-1") + b" au lait", "notes.txt", "UTF-8"),
    (b"x" * (MAX_UPLOAD_BYTES + 1), "big.jsonl", "limit"),
    (b"not parquet at all", "table.parquet", "Parquet"),
    (b"hello", "slides.pdf", ".txt"),
    (b"{broken\n[1]\n", "bad.jsonl", "no valid JSON"),
])
def test_bad_uploads_say_what_is_wrong(data, name, says):
    with pytest.raises(UserError, match=says):
        read_documents(data, name)


# ---------------------------------------------------------------- model-based quality filter

def test_quality_classifier_beats_chance():
    from engine.data.quality import QualityConfig, quality_filter

    ds = build_crawl(CrawlConfig(n_docs=240, seed=5))
    res = quality_filter(ds, QualityConfig(n_train=20))
    s = res.score
    assert len(res.p_junk) == len(ds) and len(res.train_ids) == 20
    junk_share = (s["tp"] + s["fn"]) / (len(ds) - 20)
    assert s["precision"] > junk_share + 0.3  # chance precision is the junk share
    assert s["recall"] > 0.7
