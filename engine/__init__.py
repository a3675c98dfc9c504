"""LLM Training Explorer's engine: the machinery in engine/core (configs, the training loop, the job
runner, the run store), and each page's stage beside it (ARCHITECTURE.md). Plain Python: it never
imports streamlit. Importing the package is instant: torch and transformers load with the modules
that train, so a page that trains nothing (the home page) never waits for them."""
import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # workers are threads; keep tokenizers quiet
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")      # read by transformers when it loads
# No progress bars on model loads and saves or dataset maps: with nobody reading the server's stderr,
# a full pipe blocked the jobs writing them (seen in the load test). transformers follows the hub's.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
