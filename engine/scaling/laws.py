"""What the literature measured about scaling, as formulas: parameter and FLOP counts, Kaplan's and
Chinchilla's laws and the compute-optimal allocations they imply. Every constant carries its source.

  Kaplan et al. 2020, Scaling Laws for Neural Language Models, arXiv:2001.08361
  Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, arXiv:2203.15556
  Muennighoff et al. 2023, Scaling Data-Constrained Language Models, arXiv:2305.16264
  Sanh et al. 2019, DistilBERT, a distilled version of BERT, arXiv:1910.01108
"""
from __future__ import annotations

import math

from engine.core.config import UserError

KAPLAN_ALPHA_N = 0.076        # L(N) = (N_c / N)^alpha_N, non-embedding N (Kaplan 2020, eq. 1.1)
KAPLAN_N_OPT = (1.3e9, 0.73)  # N_opt = 1.3e9 * C^0.73, C in PF-days (Kaplan 2020, figure 14)
PF_DAY = 8.64e19              # FLOPs in a petaflop/s-day
# L(N, D) = E + A/N^alpha + B/D^beta, fitted by Hoffmann 2022 (Approach 3, section 3.3; eq. 10, appendix D.2).
CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
CHINCHILLA_RANGE = (6e18, 3e21)  # the isoFLOP budgets Hoffmann 2022 measured (figure 3)
CHINCHILLA_TOKENS_PER_PARAM = 20  # Hoffmann 2022, Approaches 1 and 2 (table 3): about 20 tokens/parameter
# Chinchilla as trained: 70B parameters on 1.4T tokens (Hoffmann 2022, table 1 and section 4.1), the same
# compute as Gopher (280B parameters on 300B tokens), 5.76e23 FLOPs by the paper's own count (table 3).
CHINCHILLA_AS_TRAINED = {"n": 70e9, "d": 1.4e12}
GOPHER = {"n": 280e9, "d": 300e9}
MUENNIGHOFF_EPOCHS = 4        # repeated data up to ~4 epochs is almost as good as new (Muennighoff 2023)
DISTILBERT = {"smaller": 0.40, "faster": 0.60, "glue_kept": 0.97}  # Sanh et al. 2019, abstract

def kaplan_lr(n: float) -> float:
    """Peak learning rate by size: LR(N) = 0.003239 - 0.0001395 ln N (Kaplan 2020, eq. D.1):
    smaller models take larger steps. As published it gave the straightest log-log line here
    (bench/bench_scaling.py); twice it gave lower losses but a bumpier curve."""
    return 0.003239 - 0.0001395 * math.log(n)


# --- parameters and FLOPs -----------------------------------------------------------------------

def non_embedding(n_layer: int, n_embd: int) -> int:
    """Kaplan's N ≈ 12·L·d²: attention 4d² (q, k, v, out) plus MLP 8d² (d → 4d → d) per layer."""
    return 12 * n_layer * n_embd ** 2


def param_counts(arch: str, n_layer: int, n_embd: int, vocab: int, block: int) -> dict:
    """Exact counts of build_model's models, without building them: total (what
    `model.num_parameters()` says), non-embedding (Kaplan's N) and the 12·L·d² estimate."""
    d = n_embd
    if arch == "llama":  # no biases; two RMSNorms a layer; SwiGLU's three matrices at 8d/3; RoPE has no weights
        per_layer, embed, final = 4 * d * d + 3 * d * int(8 * d / 3) + 2 * d, vocab * d, d
    else:                # GPT-2: biases and two LayerNorms a layer; learned positions; tied output
        per_layer, embed, final = 12 * d * d + 13 * d, (vocab + block) * d, 2 * d
    body = n_layer * per_layer + final
    return {"total": body + embed, "non_embedding": body, "estimate": non_embedding(n_layer, n_embd)}


def train_flops(n: float, tokens: float) -> float:
    """C ≈ 6·N·D: 2 FLOPs a parameter a token forward, 4 backward (Kaplan 2020, section 2.1).
    It leaves out attention over the context, T/(12d) of it: under a fifth at our shapes."""
    return 6 * n * tokens


def chinchilla_loss(n: float, d: float) -> float:
    """Hoffmann 2022's fitted L(N, D) = E + A/N^alpha + B/D^beta (Approach 3, constants as printed)."""
    E, A, B, a, b = (CHINCHILLA[k] for k in ("E", "A", "B", "alpha", "beta"))
    return E + A / n ** a + B / d ** b


def chinchilla_equal_scaling(c: float) -> dict:
    """Approaches 1 and 2 (Hoffmann 2022, table 2: N_opt ∝ C^0.50 and C^0.49): N and D grow at the
    same rate, about CHINCHILLA_TOKENS_PER_PARAM tokens per parameter, so with C = 6ND:
    N_opt = sqrt(C / (6·20)), D_opt = 20·N_opt."""
    if not c > 0:
        raise UserError("The compute budget must be a positive number of FLOPs.")
    n = math.sqrt(c / (6 * CHINCHILLA_TOKENS_PER_PARAM))
    d = c / (6 * n)
    return {"n": n, "d": d, "loss": chinchilla_loss(n, d), "tokens_per_param": d / n}


def chinchilla_optimal(c: float) -> dict:
    """Minimise E + A/N^alpha + B/D^beta subject to 6ND = C (Hoffmann 2022, eq. 4):
    N_opt = G·(C/6)^(beta/(alpha+beta)), D_opt = (C/6)/N_opt, G = (alpha·A / (beta·B))^(1/(alpha+beta))."""
    if not c > 0:
        raise UserError("The compute budget must be a positive number of FLOPs.")
    A, B, a, b = (CHINCHILLA[k] for k in ("A", "B", "alpha", "beta"))
    g = (a * A / (b * B)) ** (1 / (a + b))
    n = g * (c / 6) ** (b / (a + b))
    d = c / (6 * n)
    return {"n": n, "d": d, "loss": chinchilla_loss(n, d), "tokens_per_param": d / n}


def kaplan_optimal(c: float) -> dict:
    """Kaplan 2020's allocation: N_opt = 1.3e9·(C / PF-day)^0.73, the rest of C spent on tokens."""
    if not c > 0:
        raise UserError("The compute budget must be a positive number of FLOPs.")
    k, p = KAPLAN_N_OPT
    n = k * (c / PF_DAY) ** p
    return {"n": n, "d": c / (6 * n), "tokens_per_param": c / (6 * n * n)}
