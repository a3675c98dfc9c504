"""SL-CAI's data: critique and revision (Bai et al. 2022, section 3). The paper's model writes its
critique and revision in words; here the critique is the judge's verdict and the revision the first
other sample the judge accepts (or the broken principle's own response)."""
from __future__ import annotations

from engine.cai import constitution as C
from engine.cai import judge as J
from engine.cai.generation import generate

TRACE = 12   # critiques traced in full (with the span) for the page, each kind of prompt in turn


def critique_and_revise(model, tok, judge: J.Judge, principles: list[C.Principle], prompts: list[C.Prompt],
                        n_samples: int, seed: int) -> list[dict]:
    """For each red-team prompt: sample answers; the first is the response to critique. The critique
    is the judge's verdict (which principles it breaks, and where, by occlusion); the revision is the
    first other sample the judge accepts under every principle, else the broken principle's own
    response ("I don't know.", a refusal), else none. The paper's model writes both in words."""
    texts = dict(zip([p.text for p in prompts], generate(model, tok, [p.text for p in prompts], n_samples, seed)))
    items = [(p.text, t) for p in prompts for t in texts[p.text]]
    scores = judge.scores([x.text for x in principles], items)
    rows, k = [], 0
    for p in prompts:
        s = scores[k:k + n_samples]
        k += n_samples
        first = texts[p.text][0]
        broken = [j for j in range(len(principles)) if s[0, j] > 0.5]
        row = {"kind": p.kind, "prompt": p.text, "answer": first, "truth": sorted(C.violations(p, first)),
               "broken": [principles[j].name for j in broken], "p_violation": float(s[0].max()),
               "broken_keys": [judge.match(principles[j].text)[0] for j in broken]}
        if not broken:
            row.update(revision=first, how="kept: the judge found nothing to revise")
        else:
            ok = [i for i in range(1, n_samples) if s[i].max() <= 0.5]
            worst = max(broken, key=lambda j: s[0, j])
            own = C.KNOWN[judge.match(principles[worst].text)[0]][2]
            if ok:
                row.update(revision=texts[p.text][ok[0]], how=f"sample {ok[0] + 1} of {n_samples}, which the judge accepts")
            elif own:
                row.update(revision=own, how=f"the response '{principles[worst].name}' prescribes")
            else:
                row.update(revision=None, how="no answer the judge accepts: left out")
            row["worst"] = principles[worst].name
        row["truth_after"] = sorted(C.violations(p, row["revision"])) if row["revision"] else []
        rows.append(row)
    by_kind: dict[str, list[dict]] = {}
    for r in rows:
        if r["broken"]:
            by_kind.setdefault(r["kind"], []).append(r)
    traced = [r for group in zip(*by_kind.values()) for r in group][:TRACE]   # each kind in turn
    for row in traced:
        text = next(x.text for x in principles if x.name == row["worst"])
        row["span"], row["span_drop"] = judge.span(text, row["prompt"], row["answer"])
        row["traced"] = True
    return rows


