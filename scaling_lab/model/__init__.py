"""Model shapes (analytic N and FLOPs), the `transformers` decoder, and device peaks for MFU."""

from scaling_lab.model.hardware import PEAK_BF16_FLOPS, mfu, peak_flops
from scaling_lab.model.shapes import (
    PRESETS,
    ModelConfig,
    Shape,
    flops_per_token_exact,
    n_params_nonembed,
    n_params_total,
    shape_for_target_n,
)

_BUILD = ("build_model", "count_parameters", "llama_config")


def __getattr__(name: str):
    """build_model & co. import torch and transformers: load them on first use, so configs stay light to import."""
    if name in _BUILD:
        from scaling_lab.model import build

        return getattr(build, name)
    raise AttributeError(f"module 'scaling_lab.model' has no attribute {name!r}")


__all__ = [
    "PEAK_BF16_FLOPS",
    "PRESETS",
    "ModelConfig",
    "Shape",
    "build_model",
    "count_parameters",
    "flops_per_token_exact",
    "llama_config",
    "mfu",
    "n_params_nonembed",
    "n_params_total",
    "peak_flops",
    "shape_for_target_n",
]
