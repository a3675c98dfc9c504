"""Cleaning speed on the default crawl: near-duplicate stage documents/second and the whole
pipeline's seconds (median of --repeat runs). --quality adds the embedding classifier.

    python bench/bench_dedup.py [--repeat 3] [--quality]
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import datasets  # noqa: E402

from engine.data.cleaning import clean  # noqa: E402
from engine.data.crawl import CrawlConfig, build_crawl  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quality", action="store_true")
    args = ap.parse_args()
    datasets.disable_progress_bars()

    t = time.perf_counter()
    ds = build_crawl(CrawlConfig())
    print(f"crawl: {len(ds)} documents, {sum(map(len, ds['text'])) / 1e6:.2f} MB, "
          f"built in {time.perf_counter() - t:.2f} s")
    totals, near = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        res = clean(ds)
        totals.append(time.perf_counter() - t)
        stage = {f["stage"]: f for f in res.funnel}
        reached = stage["exact_dedup"]["documents"]  # what the near-duplicate stage was given
        near.append(reached / stage["near_dedup"]["seconds"])
    print(f"near_dedup: {statistics.median(near):,.0f} documents/s (MinHash + LSH on {reached} documents)")
    print(f"pipeline: {statistics.median(totals):.2f} s (median of {args.repeat}; "
          f"runs {', '.join(f'{x:.2f}' for x in totals)})")
    print("stages (last run): " + ", ".join(f"{f['stage']} {f['seconds']:.2f}" for f in res.funnel))

    if args.quality:
        from engine.data.quality import QualityConfig, encoder, quality_filter

        t = time.perf_counter()
        encoder()
        print(f"quality: encoder loaded in {time.perf_counter() - t:.2f} s")
        q = quality_filter(ds, QualityConfig())
        print(f"quality: {len(ds) / q.seconds:,.0f} documents/s, {q.seconds:.1f} s for the crawl; "
              f"precision {q.score['precision']:.3f}, recall {q.score['recall']:.3f}")


if __name__ == "__main__":
    main()
