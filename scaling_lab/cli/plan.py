"""sl-plan: the dry run of a sweep (trains nothing).

sl-plan experiment=quickstart
sl-plan model=n3k,n7k budget.value=5e5,1e6 --no-probe --out plan.csv
sl-plan experiment=gpu_day --device-name "NVIDIA H100 80GB HBM3"      # memory, packing, GPU-hours; no probe
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scaling_lab.cli.app import one_line_errors
from scaling_lab.errors import ConfigError, exit_on_user_error
from scaling_lab.model.hardware import DEFAULT_MFU, DEFAULT_MFU_SOURCE


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = one_line_errors(argparse.ArgumentParser(prog="sl-plan", description=__doc__.split("\n")[0]))
    parser.add_argument("overrides", nargs="*", help="the same Hydra overrides as `sl-train -m` (sweeps allowed)")
    parser.add_argument("--no-probe", action="store_true", help="skip the measured step-time probe")
    parser.add_argument("--out", type=Path, help="also write the table as CSV here")
    gpu = parser.add_argument_group("planning for a GPU this machine need not have (skips the CPU probe)")
    gpu.add_argument(
        "--device-name", help='the GPU, as torch names it: "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB"'
    )
    gpu.add_argument("--mfu", type=float, default=DEFAULT_MFU,
                     help=f"model-FLOPs utilisation assumed (default {DEFAULT_MFU}: {DEFAULT_MFU_SOURCE})")  # fmt: skip
    gpu.add_argument("--gpus", type=int, default=1, help="GPUs the sweep runs on at once (the wall-clock line)")
    gpu.add_argument("--peak-tflops", type=float, help="dense bf16 peak of a device without a known datasheet")
    gpu.add_argument("--memory-gb", type=float, help="memory of a device without a known datasheet")
    args = parser.parse_args(argv)

    from scaling_lab.cli.compose import expand_grid
    from scaling_lab.outputs import check_output_file
    from scaling_lab.sweep.dry_run import format_dry_run, gpu_target
    from scaling_lab.sweep.sweep import Sweep

    target = None
    if args.device_name is not None:
        target = gpu_target(args.device_name, mfu=args.mfu, gpus=args.gpus, peak_tflops=args.peak_tflops,
                            memory_gb=args.memory_gb)  # fmt: skip
    elif (args.mfu, args.gpus, args.peak_tflops, args.memory_gb) != (DEFAULT_MFU, 1, None, None):
        raise ConfigError("--mfu, --gpus, --peak-tflops and --memory-gb plan for a GPU: give --device-name too")
    if args.out:
        check_output_file(args.out, "--out")  # before the dry run: the probe trains a few steps of every shape
    sweep = Sweep(tuple(expand_grid(args.overrides)))
    table = sweep.dry_run(probe=not args.no_probe and target is None, gpu=target)
    print(format_dry_run(table))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
