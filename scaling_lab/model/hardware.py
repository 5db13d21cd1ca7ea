"""Peak dense bf16 FLOP/s of accelerators, model-FLOPs utilisation (MFU), and a training run's device memory.

MFU follows Chowdhery et al. 2022 (PaLM, Appendix B): achieved model FLOP/s ÷ the device's peak. We count model
FLOPs with the exact Chinchilla Appendix F formula (``shapes.flops_per_token_exact``), so attention is included.
"""

from __future__ import annotations

import math

from scaling_lab.model.shapes import Shape, params_per_layer

# Dense (no 2:4 sparsity) BF16 tensor-core peaks, FLOP/s, from the vendor datasheets:
#   NVIDIA H100 Tensor Core GPU datasheet (2023): SXM 989 TFLOPS, PCIe 756 TFLOPS (the sheet lists 2× with sparsity)
#   NVIDIA H200 Tensor Core GPU datasheet (2024): SXM 989 TFLOPS
#   NVIDIA A100 Tensor Core GPU datasheet (2021): 312 TFLOPS (SXM and PCIe)
#   NVIDIA L40S datasheet (2023): 362 TFLOPS;  NVIDIA L4 datasheet (2023): 121 TFLOPS
#   NVIDIA A10 datasheet (2021): 125 TFLOPS;  NVIDIA GH200 datasheet: 989 TFLOPS (the H100 die)
#   AMD Instinct MI300X datasheet (2023): 1307 TFLOPS;  MI250X: 383 TFLOPS
# Order matters: the first key found in the device name wins, so specific names come before general ones.
PEAK_BF16_FLOPS: dict[str, float] = {
    "GH200": 989e12,
    "H200": 989e12,
    "H100 PCIE": 756e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10": 125e12,
    "MI300X": 1307e12,
    "MI250X": 383e12,
}


# Memory of each device in PEAK_BF16_FLOPS, decimal GB, from the same datasheets (H100 SXM and PCIe 80 GB, H100 NVL
# 94 GB; H200 141 GB; A100 40 or 80 GB; L40S 48 GB; L4 24 GB; A10 24 GB; GH200 96 GB of HBM3, the GPU's own, whatever
# the "480GB" of its name; MI300X 192 GB; MI250X 128 GB). As for the peaks, the first key found in the name wins.
DEVICE_MEMORY_GB: dict[str, float] = {
    "GH200": 96,
    "A100-SXM4-40GB": 40,
    "A100-PCIE-40GB": 40,
    "H200": 141,
    "H100 NVL": 94,
    "H100": 80,
    "A100": 80,
    "L40S": 48,
    "L4": 24,
    "A10": 24,
    "MI300X": 192,
    "MI250X": 128,
}
# Model-FLOPs utilisation a plan assumes when nothing was measured: 30 %. Chowdhery et al. 2022 (PaLM, Table 3) list
# MFU of 21.3 % (GPT-3), 32.5 % (Gopher) and 30.2 % (Megatron-Turing NLG) for well-engineered large-model training and
# 46.2 % for PaLM itself; small models (10M–100M parameters) in eager PyTorch usually fall below 30 % unless several
# share a GPU. An assumption to replace by a measurement: scripts/bench_gpu.py prints MFU per size on your GPU.
DEFAULT_MFU = 0.3
DEFAULT_MFU_SOURCE = "Chowdhery et al. 2022 (PaLM), Table 3: 21–33 % MFU for GPT-3, Gopher, MT-NLG"


def _lookup(table: dict, device_name: str):
    name = device_name.upper()
    return next((value for key, value in table.items() if key in name), None)


def peak_flops(device_name: str) -> float | None:
    """Peak dense bf16 FLOP/s for a device name such as ``torch.cuda.get_device_name()``; None if unknown (CPU)."""
    return _lookup(PEAK_BF16_FLOPS, device_name)


def device_memory_bytes(device_name: str) -> int | None:
    """Memory of a named device (``torch.cuda.get_device_name()``), bytes, from its datasheet; None if unknown."""
    gigabytes = _lookup(DEVICE_MEMORY_GB, device_name)
    # decimal GB: at or below what the driver reports for these devices, so a plan errs toward packing fewer runs
    return None if gigabytes is None else int(gigabytes * 1e9)


def gpu_hours(flops: float, *, peak_flops_per_second: float, mfu: float) -> float:
    """Device-hours to compute ``flops`` at ``mfu`` of a device's peak: FLOPs / (peak × MFU) / 3600 s."""
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu={mfu} must lie in (0, 1]")
    return flops / (peak_flops_per_second * mfu) / 3600


def mfu(flops_per_second: float, device_name: str) -> float | None:
    """Achieved FLOP/s as a fraction of the device's peak; None when the peak is unknown."""
    peak = peak_flops(device_name)
    return None if peak is None else flops_per_second / peak


# ---- Device memory of one training run (what decides how many small runs share one GPU) ----------------------------

# fp32 weights (4) + fp32 gradients (4) + AdamW's two fp32 moments (8) = 16 bytes per parameter, the count of
# Rajbhandari et al. 2020 (ZeRO, §3.1: "16Ψ bytes" for mixed-precision Adam): the state FSDP2 shards (ZeRO-3).
PARAMETER_STATE_BYTES = 16
# The bf16 copy of every weight that CUDA autocast makes for the forward pass (the training step keeps fp32 weights
# under bf16 autocast): autograd saves it for the backward pass, so it lives from a layer's forward to its backward.
# FSDP2 frees only the all-gathered fp32 weights after a block's forward; the bf16 copies are autocast's, so every
# rank holds them for the whole model whatever the sharding.
AUTOCAST_COPY_BYTES = 2
TRAINING_BYTES_PER_PARAM = PARAMETER_STATE_BYTES + AUTOCAST_COPY_BYTES
# DDP's gradient buckets (``bucket_cap_mb``, 25 MiB each) together hold a second copy of every gradient: the torch
# docs of DistributedDataParallel say ``gradient_as_bucket_view=True`` (not our default) saves "the total gradients
# size" of peak memory. So fp32 gradients cost 4 more bytes per parameter on every DDP rank.
DDP_BUCKET_BYTES = 4
# A parameter FSDP2 has all-gathered: its fp32 weight (4) and, during the backward pass, its unsharded fp32 gradient
# before the reduce-scatter (4). FSDP2 gathers one ``fully_shard``-ed block at a time and prefetches the next one,
# keeping two all-gather outputs alive at once in the forward pass and prefetching in reverse order in the backward
# pass (PyTorch docs, FSDP notes: "FSDP Prefetch Nuances"; Zhao et al. 2023, "PyTorch FSDP", on backward and forward
# prefetching), so two blocks are unsharded at once. The root's own parameters (embeddings, final norm, output head)
# stay gathered from its forward to the end of the backward pass (``fully_shard``: reshard_after_forward defaults to
# False for the root module).
GATHERED_BYTES = 8
GATHERED_BLOCKS = 2
# One process's fixed cost on a GPU: the CUDA context (~300 MB with CUDA ≥ 11.7 lazy module loading, >1 GB before;
# pytorch/pytorch#107667, #28394), cuBLAS workspaces and caching-allocator slack. Rounded up to 1 GiB: packing
# several processes on one GPU pays it once per process.
PROCESS_OVERHEAD_BYTES = 1 << 30
# Activations are counted as fp32 (4 bytes) although most are bf16 under autocast on CUDA: RMSNorm upcasts to fp32
# and the residual stream stays fp32, and an upper bound is what a fit test needs.
ACTIVATION_BYTES = 4
# The loss's transient peak per token, beyond the saved log-probabilities: the bf16 logits (2 bytes), their fp32
# copy (4) and the fp32 gradient of the log-softmax (4) are alive together during the backward pass.
LOGIT_TRANSIENT_BYTES = 10


def saved_activations_per_token(shape: Shape, vocab_size: int) -> int:
    """Activation elements one token keeps for the backward pass of the training step (no recomputation).

    Counted as Korthikanti et al. 2022 (§4.1) count GPT's, but for our Llama block, by reading the tensors autograd
    saves (``torch.autograd.graph.saved_tensors_hooks``, unique storages, weights excluded) for several shapes:
    ≈ 7.8·d + 4.8·ffn per layer (RMSNorm inputs/outputs, q, k, v before and after rotary, attention output,
    SwiGLU's gate, up, SiLU and product), rounded up to 8·d + 5·ffn. No S² term: SDPA's fused kernels (flash /
    memory-efficient, CPU and CUDA) keep one log-sum-exp per head, not the scores. Plus ≈ 3.3·d (final norm, head
    input; rounded up to 4·d) and the fp32 log-probabilities over the vocabulary (V).
    ``tests/model/test_hardware.py`` checks this against the saved tensors (never below, at most 15 % above).
    """
    return shape.n_layers * (8 * shape.width + 5 * shape.ffn_size) + 4 * shape.width + vocab_size


def shards_parameters(n_params: int, *, world_size: int, fsdp_min_params: int) -> bool:
    """Whether a run of ``n_params`` total parameters trained by ``world_size`` processes shards its parameters,
    gradients and optimizer state with FSDP2; below ``fsdp_min_params``, or in one process, each holds all of them
    (DDP replicates the model across processes)."""
    return world_size > 1 and n_params >= fsdp_min_params


def training_memory_bytes(
    shape: Shape, *, vocab_size: int, n_params: int, micro_batch_tokens: int, world_size: int = 1, sharded: bool = False
) -> int:
    """Peak device memory of one training process of a run trained by ``world_size`` processes: parameter state, one
    micro-batch's activations, the loss's transient and the per-process overhead. An estimate for packing and fit
    decisions, not an allocator trace.

    Parameter state: :data:`TRAINING_BYTES_PER_PARAM` per parameter in one process; with DDP (several processes, not
    ``sharded``) plus its gradient buckets; ``sharded`` by FSDP2 (:func:`shards_parameters`), the fp32 state split
    over the processes, the bf16 autocast copies whole, and the fp32 weights and gradients of the parameters gathered
    at once: the root's (everything outside the blocks) and :data:`GATHERED_BLOCKS` blocks. Every process holds the
    activations of its own micro-batch.
    """
    per_token = ACTIVATION_BYTES * saved_activations_per_token(shape, vocab_size) + LOGIT_TRANSIENT_BYTES * vocab_size
    if sharded:
        block = params_per_layer(shape)
        gathered = n_params - shape.n_layers * block + min(GATHERED_BLOCKS, shape.n_layers) * block
        parameters = (-(-PARAMETER_STATE_BYTES * n_params // world_size) + AUTOCAST_COPY_BYTES * n_params
                      + GATHERED_BYTES * gathered)  # fmt: skip
    else:
        parameters = TRAINING_BYTES_PER_PARAM * n_params + (DDP_BUCKET_BYTES * n_params if world_size > 1 else 0)
    return parameters + per_token * micro_batch_tokens + PROCESS_OVERHEAD_BYTES


def micro_batch_that_fits(
    shape: Shape,
    *,
    vocab_size: int,
    n_params: int,
    sequence_length: int,
    batch_sequences: int,
    device_memory_bytes: int,
    memory_fraction: float = 0.9,
    world_size: int = 1,
    sharded: bool = False,
) -> int:
    """The largest divisor of ``batch_sequences`` whose :func:`training_memory_bytes` (one of ``world_size``
    processes, ``sharded`` or not) fits in ``memory_fraction`` of the device (1 when even one sequence does not: the
    caller's OOM will say so)."""
    budget = memory_fraction * device_memory_bytes
    # divisors in pairs (m, batch/m) up to the square root: a batch of 2^36 sequences is 2^18 trial divisions
    divisors = {d for m in range(1, math.isqrt(batch_sequences) + 1) if batch_sequences % m == 0
                for d in (m, batch_sequences // m)}  # fmt: skip
    for micro in sorted(divisors, reverse=True):
        tokens = micro * sequence_length
        memory = training_memory_bytes(shape, vocab_size=vocab_size, n_params=n_params, micro_batch_tokens=tokens,
                                       world_size=world_size, sharded=sharded)  # fmt: skip
        if memory <= budget:
            return micro
    return 1


def processes_that_fit_sharded(
    shape: Shape, *, vocab_size: int, n_params: int, micro_batch_tokens: int, device_memory_bytes: int
) -> int | None:
    """The fewest processes (at least 2) whose FSDP2-sharded :func:`training_memory_bytes` fits each one's device;
    None when no number does (the whole bf16 copies, gathered blocks and activations alone do not fit)."""

    def fits(world_size: int) -> bool:
        memory = training_memory_bytes(shape, vocab_size=vocab_size, n_params=n_params, world_size=world_size,
                                       micro_batch_tokens=micro_batch_tokens, sharded=True)  # fmt: skip
        return memory <= device_memory_bytes

    # the estimate falls as the processes grow, and stops falling once each holds one byte of the sharded state
    fewest, most = 2, max(2, PARAMETER_STATE_BYTES * n_params)
    if not fits(most):
        return None
    while fewest < most:  # bisection: the smallest number that fits
        middle = (fewest + most) // 2
        fewest, most = (fewest, middle) if fits(middle) else (middle + 1, most)
    return fewest
