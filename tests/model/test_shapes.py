"""Analytic N and FLOPs against built modules and hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from scaling_lab.errors import ConfigError
from scaling_lab.model import (
    PRESETS,
    ModelConfig,
    Shape,
    build_model,
    count_parameters,
    flops_per_token_exact,
    mfu,
    n_params_nonembed,
    n_params_total,
    peak_flops,
    shape_for_target_n,
)

torch.set_num_threads(1)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("preset", list(PRESETS))
def test_analytic_n_equals_built_module_for_every_preset(preset: str, tied: bool) -> None:
    config = ModelConfig(preset=preset, tie_embeddings=tied)
    device = "cpu" if n_params_total(config.shape(), 256, tied=tied) < 1e5 else "meta"
    model = build_model(config, vocab_size=256, context=64, device=device)
    assert count_parameters(model) == (
        n_params_total(config.shape(), 256, tied=tied),
        n_params_nonembed(config.shape()),
    )


def test_presets_span_1e3_to_1e9_nonembedding_parameters() -> None:
    counts = sorted(n_params_nonembed(shape) for shape in PRESETS.values())
    assert counts[0] < 2e3 and counts[-1] > 9e8


def test_n_params_by_hand_for_the_smallest_preset() -> None:
    # width 8, ffn 24: attention 4·64 + MLP 3·8·24 + 2 norms·8 = 848 per layer, + final norm 8 = 856
    shape = PRESETS["n1k"]
    assert shape.ffn_size == 24
    assert n_params_nonembed(shape) == 856
    assert n_params_total(shape, 256, tied=False) == 856 + 2 * 256 * 8
    assert n_params_total(shape, 256, tied=True) == 856 + 256 * 8


def test_exact_flops_against_a_hand_computation() -> None:
    # Chinchilla Appendix F terms for L=2, d=32, 2 heads of 16, ffn 88, V=256, S=64, per sequence:
    S, d, V, L, h, ffn = 64, 32, 256, 2, 2, 88
    embeddings = 2 * S * V * d
    qkv = 2 * 3 * S * d * d
    logits = 2 * S * S * d
    softmax = 3 * h * S * S
    reduction = 2 * S * S * d
    out = 2 * S * d * d
    mlp = 2 * S * 3 * d * ffn
    head = 2 * S * d * V
    forward = embeddings + L * (qkv + logits + softmax + reduction + out + mlp) + head
    assert flops_per_token_exact(PRESETS["n25k"], V, S) == pytest.approx(3 * forward / S, rel=1e-12)


def test_exact_flops_exceed_6n_at_tiny_scale_where_the_head_dominates() -> None:
    shape = PRESETS["n7k"]
    assert flops_per_token_exact(shape, 256, 128) > 6 * n_params_total(shape, 256, tied=False)


@pytest.mark.parametrize("target", [1e3, 7e3, 1e5, 1e6, 1e7, 1e8, 1e9])
def test_target_n_rule_lands_within_a_quarter(target: float) -> None:
    shape = shape_for_target_n(target)
    assert abs(math.log(n_params_nonembed(shape) / target)) < math.log(1.25)
    if shape.n_layers > 2:  # fixed aspect ratio once deeper than the tiny regime
        assert 40 <= shape.width / shape.n_layers <= 100


def test_target_n_config_builds_that_shape() -> None:
    assert ModelConfig(target_n=1e5).shape() == shape_for_target_n(1e5)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_layers": 2, "width": 64, "n_heads": 3}, "model.n_heads=3"),
        ({"preset": "n7b"}, "model.preset='n7b'"),
        ({"n_layers": 2, "n_heads": 2}, "model.width"),
        ({"target_n": -5.0}, "model.target_n"),
    ],
)
def test_bad_model_config_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace(".", r"\.")) as error:
        ModelConfig(**kwargs)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"preset": "n1k", "n_heads": 3}, ("model.preset=n1k", "model.n_heads=3", "model.preset=null")),
        ({"preset": "n1k", "n_layers": 2, "width": 64, "n_heads": 2},  # model=custom model.preset=n1k
         ("model.n_layers=2, model.width=64, model.n_heads=2", "drop them")),
        ({"target_n": 1e5, "width": 48}, ("model.target_n=100000", "model.width=48", "model.target_n=null")),
    ],
)  # fmt: skip
def test_a_shape_field_beside_a_preset_or_target_n_is_refused_not_ignored(kwargs: dict, names: tuple) -> None:
    with pytest.raises(ConfigError) as error:
        ModelConfig(**kwargs)
    message = str(error.value)
    assert "would be ignored" in message and "\n" not in message
    assert all(name in message for name in names), message


def test_fields_left_null_beside_a_preset_are_not_user_settings() -> None:
    # preset files set only `preset`; a null (a yaml `n_heads: null`, an override model.n_heads=null) is "not given"
    assert ModelConfig(preset="n1k", n_layers=None, width=None, n_heads=None).shape() == PRESETS["n1k"]
    assert ModelConfig(preset="n1k", ffn_size=32).shape().ffn_size == 32  # ffn_size does apply to a preset


def test_heads_error_lists_valid_choices() -> None:
    with pytest.raises(ConfigError, match=r"choose n_heads among 1, 2, 4, 8"):
        Shape(n_layers=1, width=64, n_heads=3)


def test_peak_table_and_mfu_arithmetic() -> None:
    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_flops("NVIDIA H200") == 989e12
    assert peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_flops("cpu") is None
    assert mfu(494.5e12, "NVIDIA H100 80GB HBM3") == pytest.approx(0.5)
    assert mfu(1e9, "cpu") is None
