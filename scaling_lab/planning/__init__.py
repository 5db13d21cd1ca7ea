"""Planning and comparing: budgets from a law, inference-aware allocation, MoE sizes, data-mix comparison and
next-run suggestions. Never imports torch at module level (the model-shape suggestion imports it on use)."""

from scaling_lab.planning.budget import BudgetPlan, BudgetQuery, Estimate, flops_for_loss, plan_budget
from scaling_lab.planning.compare import (
    MixComparison,
    compare_fits,
    comparison_figure,
    fit_groups,
    fit_sources,
    plot_comparison,
)
from scaling_lab.planning.inference import (
    REFERENCE_MODELS,
    Allocation,
    InferencePlan,
    inference_aware_plan,
    reference_models_table,
)
from scaling_lab.planning.laws import KAPLAN_2020, PUBLISHED_LAWS, KaplanLaw, LoadedLaw, load_law, tokens_for_loss
from scaling_lab.planning.moe import MoEConfig, MoESizes, moe_sizes
from scaling_lab.planning.suggest import candidate_grid, rank_candidates, residual_sd

__all__ = [
    "KAPLAN_2020",
    "PUBLISHED_LAWS",
    "REFERENCE_MODELS",
    "Allocation",
    "BudgetPlan",
    "BudgetQuery",
    "Estimate",
    "InferencePlan",
    "KaplanLaw",
    "LoadedLaw",
    "MixComparison",
    "MoEConfig",
    "MoESizes",
    "candidate_grid",
    "compare_fits",
    "comparison_figure",
    "fit_groups",
    "fit_sources",
    "flops_for_loss",
    "inference_aware_plan",
    "load_law",
    "moe_sizes",
    "plan_budget",
    "plot_comparison",
    "rank_candidates",
    "reference_models_table",
    "residual_sd",
    "tokens_for_loss",
]
