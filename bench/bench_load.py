"""A workshop's worth of visitors at once against a real `streamlit run app.py`:
`python bench/bench_load.py --sessions 24`. The visitors and the measurements are in
tests/visitors.py (tests/test_load.py runs the same with five)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from visitors import PARAMS, run_load  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=24)
    ap.add_argument("--params", default=PARAMS)
    ap.add_argument("--spread", type=float, default=3.0, help="seconds over which visitors arrive")
    args = ap.parse_args()
    print(f"load before: {os.getloadavg()[0]:.1f}")
    out = run_load(args.sessions, args.params, args.spread)
    print(f"load after: {os.getloadavg()[0]:.1f}")
    for k, v in out.items():
        print(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}")



if __name__ == "__main__":
    main()
