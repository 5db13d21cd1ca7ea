"""sl-plan: the dry run of a sweep (trains nothing).

sl-plan experiment=quickstart
sl-plan model=n3k,n7k budget.value=5e5,1e6 --no-probe --out plan.csv
sl-plan experiment=gpu_day --device-name "NVIDIA H100 80GB HBM3"      # memory, packing, GPU-hours; no probe

The probe runs on the device each run would train on (device=auto: this machine's GPU when it has one). On a GPU
machine the plan is for that GPU, with the MFU and GPU-hours the probe measured on it; --device-name naming another
GPU, --mfu (which overrides the measurement) or --no-probe plan with an assumed MFU instead, and the header says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scaling_lab.cli.app import one_line_errors
from scaling_lab.errors import exit_on_user_error
from scaling_lab.model.hardware import DEFAULT_MFU, DEFAULT_MFU_SOURCE


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = one_line_errors(argparse.ArgumentParser(prog="sl-plan", description=__doc__.split("\n")[0]))
    parser.add_argument("overrides", nargs="*", help="the same Hydra overrides as `sl-train -m` (sweeps allowed)")
    parser.add_argument("--no-probe", action="store_true", help="skip the measured step-time probe")
    parser.add_argument("--out", type=Path, help="also write the table as CSV here")
    gpu = parser.add_argument_group("planning for a GPU: this machine's (measured), or one it need not have (assumed)")
    gpu.add_argument("--device-name", help='the GPU as torch names it: "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB"'
                     " (default: this machine's GPU, if the runs train on one; another GPU is not probed)")  # fmt: skip
    gpu.add_argument("--mfu", type=float, help=f"model-FLOPs utilisation assumed (default {DEFAULT_MFU}:"
                     f" {DEFAULT_MFU_SOURCE}); overrides the MFU measured on this machine's GPU")  # fmt: skip
    gpu.add_argument("--gpus", type=int, default=1, help="GPUs the sweep runs on at once (the wall-clock line)")
    gpu.add_argument("--peak-tflops", type=float, help="dense bf16 peak of a device without a known datasheet")
    gpu.add_argument("--memory-gb", type=float, help="memory of a device without a known datasheet")
    args = parser.parse_args(argv)

    from scaling_lab.cli.compose import expand_grid
    from scaling_lab.outputs import check_output_file
    from scaling_lab.sweep.dry_run import format_dry_run, planned_gpu, present_gpu
    from scaling_lab.sweep.sweep import Sweep

    sweep = Sweep(tuple(expand_grid(args.overrides)))
    present = present_gpu([point.config for point in sweep.points])
    target = planned_gpu(present, device_name=args.device_name, mfu=args.mfu, gpus=args.gpus,
                         peak_tflops=args.peak_tflops, memory_gb=args.memory_gb, probe=not args.no_probe)  # fmt: skip
    if args.out:
        check_output_file(args.out, "--out")  # before the dry run: the probe trains a few steps of every shape
    # an assumed GPU plan skips the probe: its times would be another device's (dry_run probes a measured one)
    table = sweep.dry_run(probe=not args.no_probe and target is None, gpu=target)
    print(format_dry_run(table))
    if present is not None and target is None:
        print(f"no GPU plan: {present.name} has no known datasheet peak; for its MFU and GPU-hours give --device-name"
              f" '{present.name}' --peak-tflops <its dense bf16 peak>")  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
