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
    processes_that_fit_sharded,
    saved_activations_per_token,
    shards_parameters,
    training_memory_bytes,
)
from scaling_lab.model.shapes import Shape, shape_for_target_n
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


# A small shape worked by hand: 4 layers, width 64, SwiGLU 176, 256 ids, untied.
#   one block: q, k, v, o 4·64² = 16384 + gate, up, down 3·64·176 = 33792 + two RMSNorms 2·64 = 128 → 50304
#   root (outside the blocks): input and output matrices 2·256·64 = 32768 + final RMSNorm 64 → 32832
#   N = 4·50304 + 32832 = 234048
#   saved activations per token: 4·(8·64 + 5·176) + 4·64 + 256 = 6080 elements
HAND_SHAPE = Shape(n_layers=4, width=64, n_heads=4, ffn_size=176)
HAND_N = 234_048
HAND_TOKENS = 128
HAND_ACTIVATIONS = HAND_TOKENS * (4 * 6080 + 10 * 256)  # fp32 saved tensors + the loss's 10-byte transient per id


def hand_estimate(**parallelism) -> int:
    return training_memory_bytes(HAND_SHAPE, vocab_size=256, n_params=HAND_N, micro_batch_tokens=HAND_TOKENS,
                                 **parallelism)  # fmt: skip


def test_the_hand_shape_counts_as_worked_out() -> None:
    assert n_params_total(HAND_SHAPE, 256, tied=False) == HAND_N
    assert saved_activations_per_token(HAND_SHAPE, 256) == 6080


def test_one_process_and_ddp_hold_every_parameter() -> None:
    assert hand_estimate() == 18 * HAND_N + HAND_ACTIVATIONS + PROCESS_OVERHEAD_BYTES
    # DDP's buckets hold a second copy of the fp32 gradients on every rank, whatever the number of ranks
    for world_size in (2, 8):
        assert hand_estimate(world_size=world_size) == 22 * HAND_N + HAND_ACTIVATIONS + PROCESS_OVERHEAD_BYTES


def test_fsdp2_shards_the_state_and_gathers_the_root_and_two_blocks() -> None:
    # 4 processes: 16·N/4 sharded state + 2·N bf16 copies + 8 bytes (fp32 weight and gradient) for the root's
    # 32832 parameters and two blocks of 50304
    sharded_state, bf16_copies, gathered = 936_192, 468_096, 8 * (32_832 + 2 * 50_304)
    assert (sharded_state, bf16_copies, gathered) == (16 * HAND_N // 4, 2 * HAND_N, 1_067_520)
    expected = sharded_state + bf16_copies + gathered + HAND_ACTIVATIONS + PROCESS_OVERHEAD_BYTES
    assert hand_estimate(world_size=4, sharded=True) == expected
    # 3 processes do not split 16·N evenly: each holds the larger share, 1248256 bytes
    assert hand_estimate(world_size=3, sharded=True) == expected - sharded_state + 1_248_256
    # one block: only it is gathered
    one_block = Shape(n_layers=1, width=64, n_heads=4, ffn_size=176)
    n = 50_304 + 32_832
    assert training_memory_bytes(one_block, vocab_size=256, n_params=n, micro_batch_tokens=0, world_size=2,
                                 sharded=True) == 8 * n + 2 * n + 8 * n + PROCESS_OVERHEAD_BYTES  # fmt: skip


@pytest.mark.parametrize(
    ("n_params", "world_size", "fsdp_min_params", "sharded"),
    [(10**9, 1, 0, False), (10**9, 2, 10**9, True), (10**9 - 1, 8, 10**9, False), (5, 2, 0, True)],
)
def test_the_shard_rule(n_params: int, world_size: int, fsdp_min_params: int, sharded: bool) -> None:
    assert shards_parameters(n_params, world_size=world_size, fsdp_min_params=fsdp_min_params) is sharded


def test_the_fewest_processes_that_fit_a_sharded_model() -> None:
    shape = shape_for_target_n(3e9)
    n = n_params_total(shape, 32768, tied=False)
    common = dict(vocab_size=32768, n_params=n, micro_batch_tokens=2048)
    per_process = lambda k: training_memory_bytes(shape, **common, world_size=k, sharded=True)  # noqa: E731
    for memory in (40e9, 80e9, 141e9):
        processes = processes_that_fit_sharded(shape, **common, device_memory_bytes=memory)
        assert processes >= 2 and per_process(processes) <= memory
        assert processes == 2 or per_process(processes - 1) > memory
    assert processes_that_fit_sharded(shape, **common, device_memory_bytes=40e9) > 2  # 3B needs more than 2 at 40 GB
    # every process holds the whole bf16 copy (6 GB at 3B), two gathered blocks and its 2048 tokens' activations
    # (~20 GB): no number of processes fits them in 24 GB
    assert per_process(10**9) > 24e9
    assert processes_that_fit_sharded(shape, **common, device_memory_bytes=24e9) is None


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
