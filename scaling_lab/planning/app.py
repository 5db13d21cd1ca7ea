"""What ``sl-budget`` does, as a typed config and one function that returns the printed report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scaling_lab.errors import ConfigError
from scaling_lab.fitting.moe_law import read_moe_law
from scaling_lab.planning.budget import BudgetPlan, BudgetQuery, plan_budget
from scaling_lab.planning.inference import inference_aware_plan, reference_models_table
from scaling_lab.planning.laws import LoadedLaw, load_law
from scaling_lab.planning.moe import DENSE_FFN_FRACTION, MoEConfig, moe_law_report, moe_sizes


@dataclass(frozen=True, kw_only=True)
class MoEOptions:
    """Optional MoE sizing of N_opt (both counts set, or neither)."""

    n_experts: int | None = None
    """Routed experts per MoE layer; None for a dense model."""
    experts_per_token: int | None = None
    """Experts per token (top-k); None for a dense model."""
    expert_fraction: float = DENSE_FFN_FRACTION
    """Share of active parameters in the routed experts (moe.py)."""
    bytes_per_param: float = 2.0
    """Bytes per stored weight (2 for bf16)."""
    law: str | None = None
    """moe_law.json of a fitted unified MoE law (scripts/moe_fit.py): size the MoE that matches N_opt by the law."""
    n_tokens: float | None = None
    """The D of the law in moe_law.json to use (None: the largest)."""

    def to_config(self) -> MoEConfig | None:
        if self.n_experts is None and self.experts_per_token is None:
            return None
        if self.n_experts is None or self.experts_per_token is None:
            raise ConfigError("moe.n_experts and moe.experts_per_token go together: set both or neither")
        return MoEConfig(
            n_experts=int(self.n_experts),
            experts_per_token=int(self.experts_per_token),
            expert_fraction=float(self.expert_fraction),
            bytes_per_param=float(self.bytes_per_param),
        )


@dataclass(frozen=True, kw_only=True)
class BudgetAppConfig:
    """``configs/sl_budget.yaml``."""

    law: str = "chinchilla"
    """chinchilla, besiroglu2024, kaplan2020, or a fit.json path."""
    flops: float | None = None
    """Training compute C (6ND, or exact FLOPs for a fit.json fitted on them). Give exactly one of flops, n_params,
    n_tokens, target_loss."""
    n_params: float | None = None
    """Model size N in the law's N."""
    n_tokens: float | None = None
    """Training tokens D."""
    target_loss: float | None = None
    """Loss to reach."""
    inference_tokens: float = 0.0
    """Lifetime tokens served; above 0 adds the inference-aware allocation (Sardana et al. 2023)."""
    reference_models: bool = False
    """Print GPT-3 175B, Chinchilla 70B and a Llama-3-8B-style model under the law."""
    moe: MoEOptions = field(default_factory=MoEOptions)
    """MoE sizing of N_opt."""

    def __post_init__(self) -> None:
        if self.inference_tokens is None or self.inference_tokens < 0:
            raise ConfigError(f"inference_tokens={self.inference_tokens} must be 0 or a positive number of tokens")

    @property
    def query(self) -> BudgetQuery:
        return BudgetQuery(
            flops=self.flops, n_params=self.n_params, n_tokens=self.n_tokens, target_loss=self.target_loss
        )


def shape_suggestion(n_params_nonembed: float) -> str:
    """The nearest size preset and the target-N rule's shape for this non-embedding N (scaling_lab.model.shapes)."""
    from scaling_lab.model.shapes import PRESETS, shape_for_target_n  # local: scaling_lab.model pulls torch
    from scaling_lab.model.shapes import n_params_nonembed as count

    def describe(shape) -> str:
        return (
            f"{shape.n_layers} layers x width {shape.width}, {shape.n_heads} heads "
            f"({count(shape):.3e} non-embedding params)"
        )

    name, preset = min(PRESETS.items(), key=lambda item: abs(math.log(count(item[1]) / n_params_nonembed)))
    ratio = n_params_nonembed / count(preset)
    lines = [
        f"shape for N_opt (model.target_n rule): {describe(shape_for_target_n(n_params_nonembed))}",
        f"nearest preset: model.preset={name}, {describe(preset)}"
        + (f"; N_opt is {ratio:.3g}x the preset" if not 0.5 < ratio < 2 else ""),
    ]
    return "\n".join(lines)


def run_budget(config: BudgetAppConfig, loaded: LoadedLaw | None = None) -> str:
    """The full ``sl-budget`` report: plan, shape, MoE sizes, inference-aware allocation, reference models; of
    ``loaded`` when given (a law in memory: ``LoadedLaw.from_outcome``), else of the law ``config.law`` names."""
    loaded = loaded if loaded is not None else load_law(config.law)
    plan: BudgetPlan = plan_budget(loaded, config.query)
    sections = [plan.report()]
    n_opt = plan.n_params.value
    if loaded.n_params_column == "n_params_total":
        sections.append("(the law counts n_params_total; shape suggestion needs non-embedding N: skipped)")
    else:
        if loaded.n_params_column != "n_params_nonembed":
            sections.append(
                f"(the fit's N column is {loaded.n_params_column!r}: the shape below reads it as non-embedding N)"
            )
        sections.append(shape_suggestion(n_opt))
    moe = config.moe.to_config()
    if config.moe.law is not None and moe is None:
        raise ConfigError(
            f"moe.law={config.moe.law} needs the MoE to plan: set moe.n_experts and moe.experts_per_token"
        )
    if moe is not None:
        sections.append(moe_sizes(n_opt, moe).report())
        if config.moe.law is not None:
            law = read_moe_law(config.moe.law, config.moe.n_tokens)
            sections.append(moe_law_report(law, n_opt, moe))
    exact = not loaded.per_token.is_6nd
    if config.inference_tokens > 0:
        if exact:  # Sardana et al. count 6ND + 2N per served token: compare at the plan's loss, in their FLOPs
            inference = inference_aware_plan(
                loaded.law, inference_tokens=config.inference_tokens, target_loss=plan.loss.value
            )
            sections.append(
                "(inference-aware allocation at the plan's loss, costed in 6ND + 2N·D_inference FLOPs)\n"
                + inference.report()
            )
        else:
            sections.append(
                inference_aware_plan(
                    loaded.law, inference_tokens=config.inference_tokens, flops=plan.flops.value
                ).report()
            )
    if config.reference_models:
        table = reference_models_table(loaded.law)
        costed = " (costed in 6ND, as the models were published)" if exact else ""
        sections.append(
            f"reference models under {loaded.source}{costed}:\n" + table.to_string(float_format=lambda v: f"{v:.4g}")
        )
    return "\n\n".join(sections)
