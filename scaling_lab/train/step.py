"""One optimizer step and one evaluation: small pure-ish functions over a model and token arrays."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from scaling_lab.data import UNION, EvalSet


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (weights and optimizer stay fp32); plain fp32 elsewhere (CPU bf16 is slow and noisy)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def sequence_loss(model: torch.nn.Module, sequences: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) over a (B, L+1) block: inputs [:, :-1], targets [:, 1:]."""
    return training_objective(model, sequences)[1]


def training_objective(model: torch.nn.Module, sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(objective, cross-entropy) over a (B, L+1) block. The objective is the cross-entropy, plus for a mixture of
    experts ``router_aux_loss_coef`` × the load-balancing loss its forward returns (Fedus et al. 2022, eq. 4):
    what the gradient follows. Eval losses and recorded losses are the cross-entropy alone."""
    inputs, targets = sequences[:, :-1], sequences[:, 1:]  # (B, L), (B, L)
    output = model(input_ids=inputs)
    logits = output.logits  # (B, L, V)
    cross_entropy = functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))
    aux_loss = getattr(output, "aux_loss", None)  # set by the MoE decoder only
    if aux_loss is None:
        return cross_entropy, cross_entropy
    return cross_entropy + model.config.router_aux_loss_coef * aux_loss, cross_entropy


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: np.ndarray,
    *,
    lr: float,
    micro_batch: int,
    grad_clip: float,
    device: torch.device,
) -> float:
    """One AdamW update on ``batch`` (B, L+1) with gradient accumulation over micro-batches; the batch's mean
    cross-entropy (an MoE's load-balancing term is in the gradient, not in the returned loss).

    Every micro-batch has the same number of predicted tokens, so scaling each micro loss by micro/B makes the
    accumulated gradient equal the full-batch gradient.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    tokens = torch.from_numpy(batch).to(device, non_blocking=True)
    total = 0.0
    for chunk in tokens.split(micro_batch):
        with autocast(device):
            objective, cross_entropy = training_objective(model, chunk)
        (objective * (chunk.size(0) / tokens.size(0))).backward()
        total += cross_entropy.detach() * (chunk.size(0) / tokens.size(0))
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(total)


@torch.no_grad()
def evaluate(model: torch.nn.Module, sequences: np.ndarray, *, micro_batch: int, device: torch.device) -> float:
    """Mean eval loss (nats/token) over a fixed (n, L+1) set; all sequences predict L tokens, so the mean of
    micro-batch means weighted by their size is the per-token mean."""
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, len(sequences), micro_batch):
        chunk = torch.from_numpy(sequences[start : start + micro_batch]).to(device)
        with autocast(device):
            total += float(sequence_loss(model, chunk)) * chunk.size(0)
    model.train(was_training)
    return total / len(sequences)


@dataclass(frozen=True, kw_only=True)
class Scores:
    """An evaluation on the eval suite: each set's and the union's loss."""

    losses: dict[str, float]
    """Mean loss in nats per predicted token, by eval set name and for the union (``all``)."""
    bpb: dict[str, float]
    """Bits per UTF-8 byte of the predicted text, by eval set name and for the union: summed nats over ln 2 times
    the bytes of exactly the scored ids, comparable across tokenizers."""

    @property
    def loss(self) -> float:
        """The union's loss: the number fitted by default."""
        return self.losses[UNION]


def evaluate_suite(model: torch.nn.Module, suite: list[EvalSet], *, micro_batch: int, device: torch.device) -> Scores:
    """Every eval set's loss and bits per byte, and the union's (all predicted tokens pooled; bytes pooled)."""
    losses, bpb, nats, tokens, text_bytes = {}, {}, 0.0, 0, 0
    for held in suite:
        losses[held.name] = evaluate(model, held.sequences, micro_batch=micro_batch, device=device)
        set_nats, set_bytes = losses[held.name] * held.predicted_tokens, int(held.window_bytes.sum())
        bpb[held.name] = set_nats / (math.log(2) * set_bytes)
        nats, tokens, text_bytes = nats + set_nats, tokens + held.predicted_tokens, text_bytes + set_bytes
    losses[UNION], bpb[UNION] = nats / tokens, nats / (math.log(2) * text_bytes)
    return Scores(losses=losses, bpb=bpb)


def diverged(loss: float, best: float, factor: float) -> bool:
    """NaN/inf, or a blow-up above ``factor`` × the best training loss so far."""
    return not math.isfinite(loss) or loss > factor * best
