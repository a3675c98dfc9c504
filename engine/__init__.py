"""LLM Training Explorer's engine: corpora, tokenizers, models, one training loop, one job
runner and a run store. Plain Python: it never imports streamlit."""
import os

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # workers are threads; keep tokenizers quiet
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")

import transformers  # noqa: E402

transformers.logging.set_verbosity_error()
