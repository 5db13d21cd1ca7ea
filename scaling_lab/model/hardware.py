"""Peak dense bf16 FLOP/s of accelerators and model-FLOPs utilisation (MFU).

MFU follows Chowdhery et al. 2022 (PaLM, Appendix B): achieved model FLOP/s ÷ the device's peak. We count model
FLOPs with the exact Chinchilla Appendix F formula (``shapes.flops_per_token_exact``), so attention is included.
"""

from __future__ import annotations

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


def peak_flops(device_name: str) -> float | None:
    """Peak dense bf16 FLOP/s for a device name such as ``torch.cuda.get_device_name()``; None if unknown (CPU)."""
    name = device_name.upper()
    for key, peak in PEAK_BF16_FLOPS.items():
        if key in name:
            return peak
    return None


def mfu(flops_per_second: float, device_name: str) -> float | None:
    """Achieved FLOP/s as a fraction of the device's peak; None when the peak is unknown."""
    peak = peak_flops(device_name)
    return None if peak is None else flops_per_second / peak
