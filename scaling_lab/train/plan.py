"""Resolve a RunConfig into numbers: shape, N, D, steps, batch, LR, warmup, β2, eval/checkpoint/cooldown steps.

Pure (no data, no model): ``sl-train`` and a dry-run planner print the same numbers from the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from scaling_lab.budget import rounded_steps, steps_for_tokens, tokens_for_budget, tokens_for_steps, whole_steps
from scaling_lab.config.schema import RunConfig
from scaling_lab.errors import ConfigError
from scaling_lab.model.shapes import Shape, flops_per_token_exact, n_params_nonembed, n_params_total
from scaling_lab.train import rules
from scaling_lab.train.schedule import Cooldown, wsd_cooldowns

DEFAULT_EVALS_PER_RUN = 10  # curve resolution when eval_every_tokens is null (Chinchilla approach 1 needs a curve)
DEFAULT_CHECKPOINTS_PER_RUN = 4  # a killed run loses at most a quarter of its work


@dataclass(frozen=True, kw_only=True)
class TrainPlan:
    """Everything a run will do, in numbers."""

    shape: Shape
    """Model shape."""
    vocab_size: int
    """Vocabulary size of the data's tokenizer."""
    sequence_length: int
    """Context length; each training sequence predicts this many tokens."""
    n_params_total: int
    """All parameters (the tied matrix once)."""
    n_params_nonembed: int
    """Parameters outside the vocabulary matrices."""
    n_params_active: int
    """Parameters that touch each token (an MoE's top-k experts; = n_params_total for a dense model)."""
    n_params_active_nonembed: int
    """Active parameters outside the vocabulary matrices (= n_params_nonembed for a dense model)."""
    flops_per_token_exact: float
    """Training FLOPs per token, Chinchilla Appendix F (3 × forward)."""
    n_tokens_planned: float
    """D asked for by the budget."""
    steps: int
    """Optimizer steps of the main run."""
    batch_sequences: int
    """Sequences per optimizer step."""
    micro_batch_sequences: int
    """Sequences per forward/backward."""
    lr: float
    """Peak learning rate."""
    beta2: float
    """AdamW β2."""
    warmup_steps: int
    """Linear warmup steps."""
    eval_steps: tuple[int, ...]
    """Steps after which the loss curve gets an eval point (always includes the last step)."""
    checkpoint_steps: tuple[int, ...]
    """Steps after which a checkpoint is written."""
    cooldowns: tuple[Cooldown, ...]
    """WSD cooldowns (empty for cosine/constant); each yields a RunPoint at its end."""

    @property
    def tokens_per_step(self) -> int:
        """Predicted tokens per optimizer step."""
        return self.batch_sequences * self.sequence_length

    def tokens_after(self, steps: int) -> int:
        """D after ``steps`` optimizer steps of this plan."""
        return tokens_for_steps(steps, self.tokens_per_step)

    @property
    def n_tokens(self) -> int:
        """Realized D of the main run."""
        return self.tokens_after(self.steps)

    @property
    def warmup_tokens(self) -> int:
        """Tokens of the warmup's whole steps (what a record stores as the resolved schedule.warmup_tokens)."""
        return self.tokens_after(self.warmup_steps)

    @property
    def steps_trained(self) -> int:
        """Optimizer steps actually run: the main run plus every WSD cooldown branched off it."""
        return self.steps + sum(c.end - c.start for c in self.cooldowns[:-1])

    @property
    def n_tokens_trained(self) -> int:
        """Tokens of steps_trained (WSD cooldown branches included): what the data must supply."""
        return self.tokens_after(self.steps_trained)

    @property
    def flops_spent_exact(self) -> float:
        """Exact FLOPs the run costs (steps_trained tokens): what a WSD run saves against separate runs."""
        return self.flops_per_token_exact * self.n_tokens_trained

    @property
    def point_steps(self) -> tuple[int, ...]:
        """Steps whose eval loss becomes a RunPoint: the cooldown ends (WSD) or the last step."""
        return tuple(c.end for c in self.cooldowns) or (self.steps,)


def _every(tokens: float | None, default_count: int, *, steps: int, tokens_per_step: int) -> tuple[int, ...]:
    """Steps k, 2k, ... ≤ steps with k = tokens / tokens_per_step; or, for null, ``default_count`` steps spread
    evenly so that the last one is the run's end; 0 → none."""
    if tokens == 0:
        return ()
    if tokens is None:
        return tuple(sorted({max(1, round(k * steps / default_count)) for k in range(1, default_count + 1)}))
    every = whole_steps(tokens, tokens_per_step)
    return tuple(range(every, steps + 1, every))


def make_plan(config: RunConfig, *, vocab_size: int) -> TrainPlan:
    """The numbers for ``config`` when trained on a tokenizer of ``vocab_size``."""
    shape = config.model.shape()
    sequence_length = config.data.sequence_length
    total = n_params_total(shape, vocab_size, tied=config.model.tie_embeddings)
    nonembed = n_params_nonembed(shape)
    active = n_params_total(shape, vocab_size, tied=config.model.tie_embeddings, active=True)
    active_nonembed = n_params_nonembed(shape, active=True)
    exact = flops_per_token_exact(shape, vocab_size, sequence_length)
    # compute per token follows the active parameters: an MoE's FLOP and tokens-per-parameter budgets count them
    budget_n = active_nonembed if config.budget.params == "nonembed" else active
    planned = tokens_for_budget(config.budget, n_params=budget_n, flops_per_token_exact=exact)
    compute = rules.deepseek_compute(shape, sequence_length=sequence_length, n_tokens=planned)

    batch_tokens = config.optim.batch_tokens
    if batch_tokens is None:
        batch_tokens = rules.default_batch_tokens(
            compute, sequence_length=sequence_length, micro_batch_sequences=config.optim.micro_batch_sequences or 1
        )
    elif batch_tokens % sequence_length:
        raise ConfigError(
            f"optim.batch_tokens={batch_tokens} is not a multiple of data.sequence_length={sequence_length}:"
            f" use {max(1, round(batch_tokens / sequence_length)) * sequence_length}"
        )
    batch_sequences = batch_tokens // sequence_length
    micro = config.optim.micro_batch_sequences or batch_sequences
    if batch_sequences % micro:
        raise ConfigError(
            f"optim.micro_batch_sequences={micro} does not divide the batch of {batch_sequences} sequences:"
            f" choose a divisor of {batch_sequences}"
        )
    step_plan = steps_for_tokens(
        planned,
        batch_sequences=batch_sequences,
        sequence_length=sequence_length,
        field=f"budget ({config.budget.kind})",
    )
    steps, tokens_per_step = step_plan.steps, step_plan.tokens_per_step

    warmup_tokens = config.schedule.warmup_tokens
    if warmup_tokens is None:
        warmup_steps = rules.default_warmup_steps(
            rules.default_warmup_tokens(active), tokens_per_step=tokens_per_step, total_steps=steps
        )
    else:
        warmup_steps = whole_steps(warmup_tokens, tokens_per_step, round_up=True)
        if warmup_steps >= steps:
            raise ConfigError(
                f"schedule.warmup_tokens={warmup_tokens:g} covers the whole run of {steps} steps:"
                f" choose fewer than {step_plan.n_tokens} tokens"
            )

    cooldowns: tuple[Cooldown, ...] = ()
    if config.schedule.kind == "wsd":
        ends = []
        for value in config.schedule.cooldown_budgets:
            if value > config.budget.value:
                raise ConfigError(
                    f"schedule.cooldown_budgets has {value:g} ({config.budget.kind}), beyond budget.value="
                    f"{config.budget.value:g}: drop it or raise the budget"
                )
            tokens = tokens_for_budget(
                replace(config.budget, value=value), n_params=budget_n, flops_per_token_exact=exact
            )
            field = f"schedule.cooldown_budgets {value:g} ({config.budget.kind})"
            ends.append(rounded_steps(tokens, tokens_per_step=tokens_per_step, field=field))
        cooldowns = tuple(
            wsd_cooldowns([*ends, steps], fraction=config.schedule.cooldown_fraction, warmup_steps=warmup_steps)
        )

    every = dict(steps=steps, tokens_per_step=tokens_per_step)
    evals = set(_every(config.eval_every_tokens, DEFAULT_EVALS_PER_RUN, **every)) | {steps}
    return TrainPlan(
        shape=shape,
        vocab_size=vocab_size,
        sequence_length=sequence_length,
        n_params_total=total,
        n_params_nonembed=nonembed,
        n_params_active=active,
        n_params_active_nonembed=active_nonembed,
        flops_per_token_exact=exact,
        n_tokens_planned=planned,
        steps=steps,
        batch_sequences=batch_sequences,
        micro_batch_sequences=micro,
        lr=config.optim.lr if config.optim.lr is not None else rules.default_lr(compute),
        beta2=config.optim.beta2 if config.optim.beta2 is not None else rules.default_beta2(batch_tokens),
        warmup_steps=warmup_steps,
        eval_steps=tuple(sorted(evals)),
        checkpoint_steps=_every(config.checkpoint_every_tokens, DEFAULT_CHECKPOINTS_PER_RUN, **every),
        cooldowns=cooldowns,
    )
