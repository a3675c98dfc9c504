"""Attention page engine: extraction, head scores, ablation, the step-by-step head, and the
offline bertviz views (one browser test renders them in headless Chromium with no network)."""
import copy
import os

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, BertConfig, GPT2Config

from engine.attention import heads as A
from engine.attention.bertviz_offline import head_view_html, model_view_html
from engine.core import minilm as encoder
from engine.core.config import UserError
from engine.core.tokenizer import char_tokenizer

torch.set_num_threads(1)
TEXT = "the cat sat on the mat. the dog sat on the log."
SENTENCE = "The cat sat on the mat because it was warm."  # for MiniLM
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer(TEXT)


def _gpt2(tok, **kw):
    # Left on transformers' default (SDPA) on purpose: extraction must switch it to eager.
    cfg = GPT2Config(vocab_size=len(tok), n_positions=32, n_embd=32, n_layer=2, n_head=4,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, **kw)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg)


def _bert(tok):
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=32, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    return AutoModelForMaskedLM.from_config(cfg)


@pytest.fixture(scope="module")
def gpt2(tok):
    return _gpt2(tok)


@pytest.fixture(scope="module")
def bert(tok):
    return _bert(tok)


@pytest.fixture(scope="module")
def minilm():
    return encoder.load()


def test_extract_tiny_models(tok, gpt2, bert):
    for model in (gpt2, bert):
        e = A.extract(model, tok, "the cat sat")
        assert e.attn.shape == (2, 4, 11, 11)
        assert torch.allclose(e.attn.sum(-1), torch.ones(2, 4, 11), atol=1e-5)
        assert e.tokens[:4] == ["t", "h", "e", "␣"] and e.notices == []
    assert torch.all(A.extract(gpt2, tok, "the cat").attn.triu(1) == 0)  # causal: no looking ahead


def test_extract_minilm(minilm):
    model, tokenizer = minilm
    assert encoder.load() is minilm and model.config._attn_implementation == "eager"
    e = A.extract(model, tokenizer, "Attention heads look at other tokens.")
    assert e.attn.shape[:2] == (6, 12) and e.attn.shape[2] == e.attn.shape[3] == len(e.tokens)
    assert e.tokens[0] == "[CLS]" and e.tokens[-1] == "[SEP]" and "Attention" in e.tokens
    assert torch.allclose(e.attn.sum(-1), torch.ones(e.attn.shape[:3]), atol=1e-4)


def test_bad_text(tok, gpt2, minilm):
    with pytest.raises(UserError):
        A.extract(gpt2, tok, "  \n")
    e = A.extract(gpt2, tok, TEXT)  # 47 characters, context 32
    assert len(e.tokens) == 32 and "only the first 32" in e.notices[0]
    e = A.extract(gpt2, tok, "the ÉÈÈ")  # outside printable ASCII and the corpus
    assert e.tokens[4:6] == ["<unk>", "<unk>"] and "'É', 'È'" in e.notices[0]
    e = A.extract(*minilm, "a 😀 b")
    assert e.tokens == ["[CLS]", "a", "[UNK]", "b", "[SEP]"] and "😀" in e.notices[0]


def test_pattern_scores_find_planted_heads():
    T = 10
    attn = torch.full((2, 3, T, T), 1.0).tril()
    attn /= attn.sum(-1, keepdim=True)        # causal and uniform: no preference
    attn[1, 2] = torch.eye(T).roll(-1, dims=1)  # layer 1 head 2: previous token
    attn[1, 2, 0] = torch.eye(T)[0]
    attn[0, 1] = 0
    attn[0, 1, :, 0] = 1                        # layer 0 head 1: attention sink on token 0
    s = A.pattern_scores(attn)
    assert np.unravel_index(s["previous_token"].argmax(), (2, 3)) == (1, 2)
    assert s["previous_token"][1, 2] == pytest.approx(1.0)
    assert np.unravel_index(s["first_token"].argmax(), (2, 3)) == (0, 1)
    assert s["entropy"][1, 2] == s["entropy"][0, 1] == 0 and s["entropy"].max() > 1


def test_notable_heads_pick_the_planted_heads_and_two_different_ones():
    T = 10
    attn = torch.full((2, 3, T, T), 1.0).tril()
    attn /= attn.sum(-1, keepdim=True)
    attn[1, 2] = torch.eye(T).roll(-1, dims=1)  # previous token
    attn[1, 2, 0] = torch.eye(T)[0]
    attn[0, 1] = 0
    attn[0, 1, :, 0] = 1                        # sink on token 0
    n = A.notable_heads(attn, causal=True)
    assert (n["previous_token"].layer, n["previous_token"].head) == (1, 2) and n["previous_token"].score == 1.0
    assert (n["first_token"].layer, n["first_token"].head) == (0, 1) and n["first_token"].score == 1.0
    assert 0.1 < n["first_token"].uniform < 0.5           # mean 1/keys over queries 1..9 of a causal model
    only_one = torch.eye(T).roll(-1, dims=1).expand(1, 1, T, T).clone()
    only_one[0, 0, 0] = torch.eye(T)[0]
    assert list(A.notable_heads(only_one, causal=True)) == ["previous_token"]   # one head cannot be both kinds


def test_minilm_opens_on_a_clear_previous_token_head_and_a_cls_head(minilm):
    """What the Attention page's first screen points at, on its default text."""
    model, tokenizer = minilm
    e = A.extract(model, tokenizer, "The astronaut's spacesuit glittered under the moonlight.")
    assert e.tokens[0] == "[CLS]" and "uit" in e.tokens                 # word pieces: spaces + uit
    n = A.notable_heads(e.attn, causal=False)
    assert n["previous_token"].score > 0.9 and n["first_token"].score > 0.8
    assert n["first_token"].uniform == pytest.approx(1 / len(e.tokens))
    assert (n["previous_token"].layer, n["previous_token"].head) != (n["first_token"].layer, n["first_token"].head)


def test_induction_score_finds_planted_head(tok, gpt2):
    model = copy.deepcopy(gpt2)

    def plant(module, args, kwargs, out):
        # Layer 1 head 3 becomes an induction head: from each position look at the token that
        # followed the latest earlier occurrence of the current token.
        ids = kwargs["input_ids"]
        B, T = ids.shape
        pattern = torch.eye(T).repeat(B, 1, 1)
        for b in range(B):
            for i in range(T):
                earlier = [j for j in range(1, i + 1) if ids[b, j - 1] == ids[b, i]]
                if earlier:
                    pattern[b, i] = torch.eye(T)[earlier[-1]]
        out.attentions[1][:, 3] = pattern
        return out

    model.register_forward_hook(plant, with_kwargs=True)
    scores = A.induction_scores(model, tok, length=12)
    assert scores.shape == (2, 4)
    assert scores[1, 3] > 0.9 and np.delete(scores.ravel(), 7).max() < 0.5


def test_head_scores_minilm(minilm):
    model, tokenizer = minilm
    s = A.head_scores(model, tokenizer, A.extract(model, tokenizer, SENTENCE))
    for grid in (s.entropy, s.previous_token, s.first_token, s.induction):
        assert grid.shape == (6, 12) and np.isfinite(grid).all()
    assert s.previous_token.max() > 0.5  # MiniLM has a strong previous-token head in layer 0


def test_ablation_changes_loss(tok, gpt2, bert, minilm):
    assert A.ablate(gpt2, tok, TEXT, []).change == 0
    for model in (gpt2, bert):
        r = A.ablate(model, tok, TEXT, [(0, 1), (1, 2)])
        assert r.metric == "loss" and abs(r.change) > 1e-6
        assert A.ablate(model, tok, TEXT, []).before == r.before  # the hooks are gone
    # Same as zeroing that head's values by hand: its output is then zero.
    by_hand = copy.deepcopy(gpt2)
    cols = slice(64 + 8, 64 + 16)  # c_attn gives q, k, v of width 32 each; v of head 1 (width 8)
    with torch.no_grad():
        by_hand.transformer.h[0].attn.c_attn.weight[:, cols] = 0
        by_hand.transformer.h[0].attn.c_attn.bias[cols] = 0
    expected = A.ablate(by_hand, tok, TEXT, []).before
    assert A.ablate(gpt2, tok, TEXT, [(0, 1)]).after == pytest.approx(expected, abs=1e-5)
    r = A.ablate(*minilm, SENTENCE, [(0, h) for h in range(12)])
    assert r.metric == "embedding distance" and r.after > 1e-3
    with pytest.raises(UserError):
        A.ablate(gpt2, tok, TEXT, [(5, 0)])


def test_attention_step_matches_model(tok, gpt2, bert, minilm):
    for model, tokenizer, text in ((gpt2, tok, TEXT), (bert, tok, TEXT), (*minilm, SENTENCE)):
        e = A.extract(model, tokenizer, text)
        for layer, head, query in ((0, 0, 5), (1, 3, 9)):
            s = A.attention_step(model, e.ids, layer, head, query)
            np.testing.assert_allclose(s.weights, e.attn[layer, head, query].numpy(), atol=1e-5)
            np.testing.assert_allclose(s.output, s.weights @ s.values, atol=1e-5)
            assert s.scale == pytest.approx(np.sqrt(s.query.shape[0]))
    ids = A.extract(gpt2, tok, TEXT).ids
    s = A.attention_step(gpt2, ids, 0, 0, 5)
    assert np.isneginf(s.masked[6:]).all() and (s.weights[6:] == 0).all()
    hot = A.attention_step(gpt2, ids, 0, 0, 5, temperature=100)
    assert np.abs(hot.weights[:6] - 1 / 6).max() < np.abs(s.weights[:6] - 1 / 6).max()


def test_views_are_offline_and_escape_tokens():
    attn = torch.softmax(torch.randn(2, 3, 4, 4), -1)
    tokens = ["</script><script>window.pwned=1</script>", "<b>x</b>", "a&amp;b", "ok"]
    for html in (head_view_html(attn, tokens), model_view_html(attn, tokens)):
        assert "window.pwned" in html and "<b>x</b>" not in html and "&amp;" not in html
        # Only jQuery's, d3's, the loader's and bertviz's own scripts close: no token ends one.
        assert html.lower().count("</script") == 4 and "<!--" not in html
        assert "src=" not in html and "cdnjs" not in html


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
def test_views_render_offline_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright
    torch.manual_seed(0)
    attn = torch.softmax(3 * torch.randn(2, 3, 5, 5), -1)
    tokens = ["</script><script>window.pwned=1</script>", "<b>bold</b>", "cat", "sat", "."]
    (tmp_path / "head.html").write_text(head_view_html(attn, tokens), encoding="utf-8")
    (tmp_path / "model.html").write_text(model_view_html(attn, tokens), encoding="utf-8")
    outside, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.route(lambda url: not url.startswith("file:"),
                       lambda route: (outside.append(route.request.url), route.abort()))
            page.goto((tmp_path / "head.html").as_uri())
            page.wait_for_selector("#vis svg line", state="attached", timeout=10_000)
            assert page.locator("#vis svg line").count() == 3 * 5 * 5  # layer 0: heads × T × T
            shown = page.locator("#vis svg text").all_text_contents()
            assert tokens[0] in shown and "<b>bold</b>" in shown
            assert page.evaluate("window.pwned") is None
            page.locator("#vis svg #left text", has_text="cat").hover()  # d3 3's event handlers work
            assert page.locator("#attention line[visibility='visible']").count() == 3 * 5
            page.goto((tmp_path / "model.html").as_uri())
            page.wait_for_selector("#vis svg line", state="attached", timeout=10_000)
            assert page.locator("#vis svg line").count() == 2 * 3 * 5 * 5
        finally:
            browser.close()
    assert outside == [] and errors == []
