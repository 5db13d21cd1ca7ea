"""The optimizer (its settings: ``scaling_lab.config.training.OptimConfig``)."""

from __future__ import annotations

import torch

from scaling_lab.config.training import OptimConfig


def make_adamw(
    model: torch.nn.Module, *, lr: float, betas: tuple[float, float], eps: float, weight_decay: float, fused: bool
) -> torch.optim.AdamW:
    """AdamW with decay on ≥2-D weights except the vocabulary matrices (nanoGPT's `configure_optimizers`, minus
    embeddings: decaying the input embedding of a tiny byte model only shrinks rarely seen rows)."""
    vocab = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2 and id(p) not in vocab]
    no_decay = [p for p in params if p.dim() < 2 or id(p) in vocab]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=fused)


def adamw_for_run(
    model: torch.nn.Module, optim: OptimConfig, *, lr: float, beta2: float, device: torch.device
) -> torch.optim.AdamW:
    """The run's AdamW: ``optim``'s settings with the plan's peak rate and β2 (null rules resolved), fused as
    :meth:`OptimConfig.fused_on` says. The trainer and the dry run's step-time probe both build it here."""
    return make_adamw(model, lr=lr, betas=(optim.beta1, beta2), eps=optim.eps, weight_decay=optim.weight_decay,
                      fused=optim.fused_on(device.type))  # fmt: skip
