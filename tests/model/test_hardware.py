"""Device peaks, and the memory estimate that decides how many runs share a GPU, against what autograd really keeps."""

from __future__ import annotations

import pytest
import torch

from scaling_lab.model import PRESETS, ModelConfig, build_model, n_params_total
from scaling_lab.model.hardware import (
    PEAK_BF16_FLOPS,
    PROCESS_OVERHEAD_BYTES,
    micro_batch_that_fits,
    peak_flops,
    saved_activations_per_token,
    training_memory_bytes,
)
from scaling_lab.train.step import autocast, sequence_loss

torch.set_num_threads(1)


def test_no_peak_entry_is_shadowed_by_an_earlier_shorter_name() -> None:
    # the first key found in the device name wins: "A10" listed before "A100" would give an A100 the A10's peak
    keys = list(PEAK_BF16_FLOPS)
    for i, earlier in enumerate(keys):
        for later in keys[i + 1 :]:
            assert earlier not in later, f"{earlier!r} comes before {later!r} and matches every {later} name"


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA GH200 480GB", 989e12),
        ("NVIDIA H100 NVL", 989e12),
        ("NVIDIA L40S", 362e12),
        ("NVIDIA L4", 121e12),
        ("NVIDIA A10", 125e12),
        ("NVIDIA A100 80GB PCIe", 312e12),
        ("AMD Instinct MI300X", 1307e12),
        ("AMD Instinct MI250X", 383e12),
        ("NVIDIA GeForce RTX 3090", None),
    ],
)
def test_each_device_name_gets_its_own_datasheet_peak(name: str, peak: float | None) -> None:
    assert peak_flops(name) == peak


def saved_elements_per_token(preset: str, *, vocab: int, context: int, batch: int, device: str = "cpu") -> float:
    """Elements of the tensors autograd saves for one training forward pass (unique storages, weights excluded),
    per token. Reads the real model's graph through ``saved_tensors_hooks``."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(preset=preset), vocab_size=vocab, context=context, device=device)
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes() // tensor.element_size()
        return tensor

    tokens = torch.randint(0, vocab, (batch, context + 1), device=device)
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        sequence_loss(model, tokens)
    return sum(saved.values()) / (batch * context)


@pytest.mark.parametrize(
    ("preset", "vocab", "context", "batch"),
    [("n1k", 256, 32, 4), ("n100k", 256, 64, 4), ("n400k", 1024, 64, 2), ("n1m", 256, 128, 2), ("n3m", 4096, 64, 2)],
)
def test_activation_count_bounds_what_autograd_saves(preset: str, vocab: int, context: int, batch: int) -> None:
    measured = saved_elements_per_token(preset, vocab=vocab, context=context, batch=batch)
    estimate = saved_activations_per_token(PRESETS[preset], vocab)
    assert measured <= estimate <= 1.15 * measured, f"{preset}: estimate {estimate} vs saved {measured:.0f}"


def test_activation_count_has_no_quadratic_attention_term() -> None:
    # SDPA's fused kernels keep a log-sum-exp, not the S×S scores: twice the context, same elements per token
    short = saved_elements_per_token("n100k", vocab=256, context=64, batch=2)
    long = saved_elements_per_token("n100k", vocab=256, context=128, batch=2)
    assert long == pytest.approx(short, rel=0.01)


def test_training_memory_adds_state_activations_and_process_overhead() -> None:
    shape = PRESETS["n10m"]
    n = n_params_total(shape, 256, tied=False)
    one = training_memory_bytes(shape, vocab_size=256, n_params=n, micro_batch_tokens=1024)
    two = training_memory_bytes(shape, vocab_size=256, n_params=n, micro_batch_tokens=2048)
    per_token = (two - one) // 1024
    assert per_token == 4 * saved_activations_per_token(shape, 256) + 10 * 256
    assert one - 1024 * per_token == 18 * n + PROCESS_OVERHEAD_BYTES
    # an n10m run on 8 × 1024 byte-level tokens needs about 3 GB: eight of them fit in 90 % of an 80 GB GPU
    eight = training_memory_bytes(shape, vocab_size=256, n_params=n, micro_batch_tokens=8192)
    assert 2.5e9 < eight < 3.5e9 and 8 * eight < 0.9 * 80e9


def test_micro_batch_is_the_largest_divisor_that_fits() -> None:
    shape = PRESETS["n300m"]
    n = n_params_total(shape, 256, tied=False)
    common = dict(vocab_size=256, n_params=n, sequence_length=1024, batch_sequences=48)
    fits = lambda micro, memory: training_memory_bytes(  # noqa: E731
        shape, vocab_size=256, n_params=n, micro_batch_tokens=micro * 1024) <= 0.9 * memory  # fmt: skip
    for memory in (16e9, 24e9, 40e9, 80e9, 141e9, 1e15):
        micro = micro_batch_that_fits(shape, **common, device_memory_bytes=memory)
        assert 48 % micro == 0
        larger = [m for m in range(micro + 1, 49) if 48 % m == 0]
        assert micro == 1 or fits(micro, memory)
        assert not any(fits(m, memory) for m in larger)
    assert micro_batch_that_fits(shape, **common, device_memory_bytes=1e15) == 48
    assert micro_batch_that_fits(shape, **common, device_memory_bytes=1e9) == 1  # nothing fits: the OOM will say so


def test_micro_batch_of_a_huge_batch_is_found_without_trying_every_size() -> None:
    shape = PRESETS["n1k"]
    common = dict(vocab_size=256, n_params=n_params_total(shape, 256, tied=False), sequence_length=16)
    one = training_memory_bytes(shape, vocab_size=256, n_params=common["n_params"], micro_batch_tokens=16)
    assert micro_batch_that_fits(shape, **common, batch_sequences=2**36, device_memory_bytes=one / 0.9) == 1
    assert micro_batch_that_fits(shape, **common, batch_sequences=3 * 2**35, device_memory_bytes=1e20) == 3 * 2**35


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("preset", ["n1m", "n10m"])
def test_memory_estimate_bounds_a_real_cuda_step(preset: str) -> None:
    # the estimate without the per-process overhead must cover what the allocator peaks at in a bf16 training step
    device = torch.device("cuda")
    shape, vocab, context, batch = PRESETS[preset], 256, 1024, 8
    torch.manual_seed(0)
    model = build_model(ModelConfig(preset=preset), vocab_size=vocab, context=context, device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    tokens = torch.randint(0, vocab, (batch, context + 1), device=device)
    torch.cuda.reset_peak_memory_stats(device)
    for _ in range(2):  # the second step has the optimizer's moments allocated
        with autocast(device):
            loss = sequence_loss(model, tokens)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    peak = torch.cuda.max_memory_allocated(device)
    n = n_params_total(shape, vocab, tied=False)
    estimate = training_memory_bytes(shape, vocab_size=vocab, n_params=n, micro_batch_tokens=batch * context)
    assert peak <= estimate - PROCESS_OVERHEAD_BYTES, f"{preset}: peak {peak / 1e9:.2f} GB above the estimate"
