"""Every cap the app enforces, in one place, so a host can see and tune them together."""
import os


def _env(name: str, default: float) -> float:
    return type(default)(os.environ.get(f"LLMX_{name}", default))


MAX_CONCURRENT_JOBS = _env("MAX_CONCURRENT_JOBS", 2)   # one per core on Community Cloud
MAX_JOBS_PER_SESSION = _env("MAX_JOBS_PER_SESSION", 2)  # running or queued, per browser tab
MAX_QUEUED_JOBS = _env("MAX_QUEUED_JOBS", 40)           # beyond this, Train says "come back shortly"
MAX_JOB_SECONDS = _env("MAX_JOB_SECONDS", 300)          # every job stops by itself
MAX_PAUSE_SECONDS = _env("MAX_PAUSE_SECONDS", 300)      # a paused job keeps its slot: it stops after this
MAX_UPLOAD_BYTES = _env("MAX_UPLOAD_BYTES", 5_000_000)  # uploads are read into memory
# st.file_uploader(max_upload_size=...) and .streamlit/config.toml's maxUploadSize count MiB: rounded
# up, so Streamlit's own check never refuses a file that ours accepts (ours explains the refusal).
MAX_UPLOAD_MB = -(-int(MAX_UPLOAD_BYTES) // 2**20)
MAX_PARAMS = _env("MAX_PARAMS", 5_000_000)              # larger models cannot train in the time limit
MAX_RUNS_ON_DISK = _env("MAX_RUNS_ON_DISK", 200)        # oldest user runs are pruned past this count
MAX_RUNS_BYTES = _env("MAX_RUNS_BYTES", 1_000_000_000)  # ... or past this size on disk (a 1M model: ~5 MB)
MAX_FINISHED_JOBS = _env("MAX_FINISHED_JOBS", 64)       # finished jobs kept in memory (curves, replays)
# A visitor whose last tab closed keeps their jobs running this long: a reload, or a phone waking a
# discarded tab, comes back within it; a tab closed for good frees its slots when it ends.
VISITOR_GRACE_SECONDS = _env("VISITOR_GRACE_SECONDS", 120.0)
MAX_ROOM_RESULTS = _env("MAX_ROOM_RESULTS", 5000)      # finished jobs' settings and metrics for the room view
