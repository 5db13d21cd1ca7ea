"""Per-size default rules for learning rate, batch size, warmup and AdamW β2 (each overridable in the config).

Compute here is DeepSeek-AI 2024 (DeepSeek LLM, §3.1 eq. 2) "non-embedding FLOPs": C = M·D with
M = 72·L·d² + 6·L·d·S per token; with our SwiGLU layers 72·L·d² is 6·N_nonembed, so M = 6·N_nonembed + 6·L·d·S.
For a mixture of experts N_nonembed is the active count (the compute per token the rules were fitted on).
At the tiny end these rules stay sensible: at C = 1e12 they give lr ≈ 1e-2 and ≈ 2.5k-token batches, in line
with byte-level models measured to keep improving down to ~7k non-embedding parameters with 4k-token batches.
"""

from __future__ import annotations

from scaling_lab.budget import flops_per_token_6n, whole_steps
from scaling_lab.model.shapes import Shape, n_params_nonembed

# DeepSeek LLM 2024, eq. (1): η_opt = 0.3118 · C^-0.1250, B_opt = 0.2920 · C^0.3271 (B in tokens).
DEEPSEEK_LR_COEFF, DEEPSEEK_LR_EXPONENT = 0.3118, -0.1250
DEEPSEEK_BATCH_COEFF, DEEPSEEK_BATCH_EXPONENT = 0.2920, 0.3271
# Porian et al. 2024 (§4, "tuning AdamW β2 is essential at lower batch sizes"): the usual β2 = 0.95 hurts small
# batches, where they use 0.99; the 100k-token switch point is our reading of their batch range, not their number.
BETA2_SMALL_BATCH, BETA2_LARGE_BATCH, BETA2_SWITCH_TOKENS = 0.99, 0.95, 100_000


def deepseek_compute(shape: Shape, *, sequence_length: int, n_tokens: float) -> float:
    """C = M·D with M = 6·N_nonembed + 6·L·d·S (DeepSeek LLM 2024 eq. 2), N_nonembed active."""
    attention = 6 * shape.n_layers * shape.width * sequence_length  # 6·L·d·S: attention over the context
    flops_per_token = flops_per_token_6n(n_params_nonembed(shape, active=True)) + attention
    return flops_per_token * n_tokens


def default_lr(compute: float) -> float:
    """Peak learning rate for a compute budget (DeepSeek LLM 2024 eq. 1)."""
    return DEEPSEEK_LR_COEFF * compute**DEEPSEEK_LR_EXPONENT


def default_batch_tokens(compute: float, *, sequence_length: int, micro_batch_sequences: int = 1) -> int:
    """Batch size in tokens (DeepSeek LLM 2024 eq. 1), rounded to whole micro-batches of whole sequences (at least
    one), so that a fixed ``optim.micro_batch_sequences`` divides the rule's batch at every budget."""
    tokens = DEEPSEEK_BATCH_COEFF * compute**DEEPSEEK_BATCH_EXPONENT
    micro_batch_tokens = micro_batch_sequences * sequence_length
    return max(1, round(tokens / micro_batch_tokens)) * micro_batch_tokens


def default_warmup_tokens(n_params: int) -> int:
    """Warmup of N tokens (Porian et al. 2024 §3.3: a warmup equal to the model size, shorter than Kaplan's
    fixed 3000 steps, which alone accounts for part of the Kaplan/Chinchilla discrepancy at small N)."""
    return n_params


def default_warmup_steps(warmup_tokens: float, *, tokens_per_step: int, total_steps: int) -> int:
    """Warmup tokens → steps: at least 1, at most a quarter of the run (so tiny runs still decay)."""
    return max(1, min(whole_steps(warmup_tokens, tokens_per_step, round_up=True), total_steps // 4))


def default_beta2(batch_tokens: int) -> float:
    """AdamW β2 by batch size (Porian et al. 2024 §4)."""
    return BETA2_SMALL_BATCH if batch_tokens < BETA2_SWITCH_TOKENS else BETA2_LARGE_BATCH
