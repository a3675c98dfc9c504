"""AppTest helpers every page test uses: open a page (optionally from a link), poll a live view,
collect the text a person would read."""
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


def open_page(script: str, params: dict | None = None, timeout: float = 60) -> AppTest:
    """Run `script` (e.g. "app_pages/sft.py"), as opened by a link carrying `params`."""
    at = AppTest.from_file(str(ROOT / script), default_timeout=timeout)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    return " ".join(x.value for kind in ("markdown", "caption", "success", "warning", "error", "info")
                    for x in getattr(at, kind))


def poll(at: AppTest, done, timeout: float = 90) -> None:
    """`run_every` never fires in AppTest: rerun until `done(at)` or the deadline."""
    end = time.time() + timeout
    while time.time() < end:
        at.run()
        assert not at.exception, at.exception
        if done(at):
            return
        time.sleep(0.3)
    raise AssertionError("timed out; page shows: " + texts(at)[:2000])
