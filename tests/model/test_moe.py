"""Mixture-of-experts shapes: analytic N (stored and active) and FLOPs against built Mixtral modules."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from scaling_lab.errors import ConfigError
from scaling_lab.model import PRESETS, ModelConfig, build_model, count_parameters
from scaling_lab.model.build import count_active_parameters
from scaling_lab.model.shapes import (
    forward_flops_per_token_exact,
    n_params_nonembed,
    n_params_total,
)

torch.set_num_threads(1)

ROUTINGS = [(4, 1, 1), (8, 2, 2)]  # (E, k, G): Switch-style top-1, and a fine-grained top-2 at granularity 2


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize(("experts", "top_k", "granularity"), ROUTINGS)
@pytest.mark.parametrize("preset", list(PRESETS))
def test_analytic_stored_and_active_n_equal_the_built_moe_for_every_preset(
    preset: str, experts: int, top_k: int, granularity: int, tied: bool
) -> None:
    config = ModelConfig(preset=preset, tie_embeddings=tied, n_experts=experts, experts_per_token=top_k,
                         granularity=granularity)  # fmt: skip
    shape = config.shape()
    device = "cpu" if n_params_total(shape, 256, tied=tied) < 2e5 else "meta"
    model = build_model(config, vocab_size=256, context=64, device=device)
    assert type(model).__name__ == "MixtralForCausalLM"
    assert count_parameters(model) == (n_params_total(shape, 256, tied=tied), n_params_nonembed(shape))
    assert count_active_parameters(model) == (
        n_params_total(shape, 256, tied=tied, active=True),
        n_params_nonembed(shape, active=True),
    )


def test_moe_counts_by_hand_for_the_smallest_preset() -> None:
    # width 8, ffn 24, E=4 experts of 24 (G=1), top-2: attention 4·64 = 256, one expert 3·8·24 = 576,
    # router 8·4 = 32, norms 2·8 = 16, final norm 8
    shape = ModelConfig(preset="n1k", n_experts=4, experts_per_token=2).shape()
    assert n_params_nonembed(shape) == 256 + 4 * 576 + 32 + 16 + 8
    assert n_params_nonembed(shape, active=True) == 256 + 2 * 576 + 32 + 16 + 8
    # a dense model: active = stored, and the dense count is unchanged
    dense = PRESETS["n1k"]
    assert n_params_nonembed(dense, active=True) == n_params_nonembed(dense) == 856


def _counted_forward_flops(model: torch.nn.Module, tokens: torch.Tensor) -> int:
    """Matmul FLOPs of one forward, counted by torch, with the attention and experts run as plain matmuls."""
    model.set_attn_implementation("eager")  # SDPA's CPU kernel is not in torch's FLOP table
    if hasattr(model, "set_experts_implementation"):
        model.set_experts_implementation("eager")  # one matmul per expert over its routed tokens
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(input_ids=tokens)
    return counter.get_total_flops()


@pytest.mark.parametrize(("experts", "top_k", "granularity"), [(1, 1, 1), *ROUTINGS, (16, 1, 1)])
@pytest.mark.parametrize("preset", ["n1k", "n25k", "n100k"])
def test_analytic_flops_equal_a_counted_forward_pass(preset: str, experts: int, top_k: int, granularity: int) -> None:
    """Appendix F's terms match torch's count of every matmul exactly, once the two terms torch does not count as
    matmuls are taken out: the embedding lookup (2·S·V·d) and the attention softmax (3·h·S²). Expert FLOPs are
    counted on the tokens actually routed, so this also checks that each token reaches exactly k experts."""
    config = ModelConfig(preset=preset, n_experts=experts, experts_per_token=top_k, granularity=granularity)
    shape, vocab, context, batch = config.shape(), 256, 32, 3
    torch.manual_seed(0)
    model = build_model(config, vocab_size=vocab, context=context)
    counted = _counted_forward_flops(model, torch.randint(0, vocab, (batch, context)))
    analytic = forward_flops_per_token_exact(shape, vocab, context) * context * batch
    not_matmuls = batch * (2 * context * vocab * shape.width + shape.n_layers * 3 * shape.n_heads * context**2)
    assert counted == pytest.approx(analytic - not_matmuls, rel=1e-12)


def test_target_rule_sizes_an_moe_by_active_parameters() -> None:
    for experts, top_k, granularity in ROUTINGS:
        config = ModelConfig(target_n=1e5, n_experts=experts, experts_per_token=top_k, granularity=granularity)
        active = n_params_nonembed(config.shape(), active=True)
        assert abs(math.log(active / 1e5)) < math.log(1.25), (experts, active)
        assert n_params_nonembed(config.shape()) > 2 * active  # the other experts are stored, not active


def test_a_dense_config_keeps_its_dict_and_hash() -> None:
    dense = ModelConfig(preset="n7k").to_dict()
    assert not {"n_experts", "experts_per_token", "granularity", "router_aux_loss_coef"} & set(dense)
    moe = ModelConfig(preset="n7k", n_experts=8).to_dict()
    assert moe["n_experts"] == 8 and moe["router_aux_loss_coef"] == 0.01
    assert ModelConfig(preset="n7k", n_experts=8).name() == "n7k-e8k1"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_experts": 0}, "model.n_experts=0"),
        ({"n_experts": 4, "experts_per_token": 5}, "model.experts_per_token=5"),
        ({"n_experts": 1, "granularity": 2}, "model.granularity=2"),
        ({"n_experts": 4, "granularity": 5}, "model.granularity=5"),
        ({"n_experts": 4, "router_aux_loss_coef": -1.0}, "model.router_aux_loss_coef=-1.0"),
    ],
)
def test_bad_expert_settings_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")) as error:
        ModelConfig(preset="n7k", **kwargs)
    assert "\n" not in str(error.value)
