"""Throughput of our training step against a minimal plain-PyTorch decoder of identical shape, and against this
machine's fp32 matmul peak, measured in the same run.

Both models have the same N (checked), vocabulary, context and batch; both train with AdamW, gradient clipping
1.0, bf16 autocast on CUDA / fp32 on CPU, on the same random token batches, in this process. Ours runs the
trainer's own step with its defaults (fused AdamW on CPU and CUDA); the plain model uses ``torch.optim.AdamW``'s
defaults, as a from-scratch training script would. Per size: tokens/s, achieved FLOP/s (Chinchilla App. F count,
exact per token), percent of the matmul peak (a 2048² fp32 ``torch.mm`` on the same threads) and the ratio
ours / plain. ``--compile`` adds ours under ``torch.compile`` (the compile time is printed, not counted).

Sizes on CPU: the quickstart's 2-layer widths (w8, w20, w48, w96, sequence 128, 2,048-token batches) and the
presets n100k, n1m, n3m at the same batch; one thread by default, as each of the sweep's two jobs runs.
Targets (the README's benchmark table): ≥ 2× plain at quickstart sizes, ≥ 1.2× at n100k–n3m,
≥ 30 % of the peak at n1m.

    python scripts/bench_train.py                         # CPU always; CUDA too when present
    python scripts/bench_train.py --sizes w8 n1m --steps 20 --threads 2 --compile
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from scaling_lab.config.training import OptimConfig
from scaling_lab.model import ModelConfig, build_model, count_parameters, flops_per_token_exact
from scaling_lab.model.shapes import Shape
from scaling_lab.train.optim import make_adamw
from scaling_lab.train.step import autocast, train_step


class PlainBlock(nn.Module):
    """Pre-norm block: RMSNorm → causal SDPA with rotary q/k → RMSNorm → SwiGLU (the Llama layout)."""

    def __init__(self, shape: Shape) -> None:
        super().__init__()
        d = shape.width
        self.heads = shape.n_heads
        self.norm1, self.norm2 = nn.RMSNorm(d, eps=1e-5), nn.RMSNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d, bias=False)  # same 3·d² parameters as q, k, v
        self.out = nn.Linear(d, d, bias=False)
        self.gate_up = nn.Linear(d, 2 * shape.ffn_size, bias=False)
        self.down = nn.Linear(shape.ffn_size, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, L, 3, self.heads, d // self.heads).unbind(2)  # (B, L, h, k) × 3
        q, k = (rotate(t, cos, sin).transpose(1, 2) for t in (q, k))  # (B, h, L, k)
        attention = functional.scaled_dot_product_attention(q, k, v.transpose(1, 2), is_causal=True)
        x = x + self.out(attention.transpose(1, 2).reshape(B, L, d))
        gate, up = self.gate_up(self.norm2(x)).chunk(2, dim=-1)
        return x + self.down(functional.silu(gate) * up)


def rotate(t: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, half-split convention (as in transformers' Llama)."""
    first, second = t.chunk(2, dim=-1)
    return t * cos + torch.cat((-second, first), dim=-1) * sin


class PlainDecoder(nn.Module):
    """The minimal plain-PyTorch decoder: embedding, blocks, final RMSNorm, untied head."""

    def __init__(self, shape: Shape, vocab_size: int, context: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, shape.width)
        self.blocks = nn.ModuleList(PlainBlock(shape) for _ in range(shape.n_layers))
        self.norm = nn.RMSNorm(shape.width, eps=1e-5)
        self.head = nn.Linear(shape.width, vocab_size, bias=False)
        half = shape.head_size // 2
        inv_freq = 1.0 / 10_000 ** (torch.arange(half, dtype=torch.float32) / half)
        angles = torch.outer(torch.arange(context, dtype=torch.float32), inv_freq).repeat(1, 2)  # (L, k)
        self.register_buffer("cos", angles.cos()[None, :, None, :], persistent=False)
        self.register_buffer("sin", angles.sin()[None, :, None, :], persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, self.cos[:, : tokens.size(1)], self.sin[:, : tokens.size(1)])
        return self.head(self.norm(x))


def plain_step(model: PlainDecoder, optimizer: torch.optim.Optimizer, batch: np.ndarray, device: torch.device) -> float:
    tokens = torch.from_numpy(batch).to(device)
    with autocast(device):
        logits = model(tokens[:, :-1])
        loss = functional.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def timed(step, batches: list[np.ndarray], warmup: int, device: torch.device) -> float:
    """Seconds per step over ``batches`` after ``warmup`` untimed steps."""
    for batch in batches[:warmup]:
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for batch in batches[warmup:]:
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / (len(batches) - warmup)


QUICKSTART_WIDTHS = {"w8": (8, 1), "w20": (20, 1), "w48": (48, 2), "w96": (96, 2)}
"""The quickstart's 2-layer shapes by name: width and heads (configs/experiment/isoflop_cosine.yaml's grid)."""


def model_config(size: str) -> ModelConfig:
    """A quickstart width (``w8`` … ``w96``, two layers) or a preset (``n1m``)."""
    if size in QUICKSTART_WIDTHS:
        width, heads = QUICKSTART_WIDTHS[size]
        return ModelConfig(n_layers=2, width=width, n_heads=heads)
    return ModelConfig(preset=size)


def matmul_peak(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of an fp32 ``size``² matrix product on ``device`` (bf16 on CUDA, as the trainer computes there)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    seconds = timed(lambda _: a @ b, [None] * (repeats + 3), 3, device)
    return 2 * size**3 / seconds


def bench(size: str, *, device: torch.device, vocab: int, context: int, batch: int, steps: int, rounds: int,
          compile_model: bool, fused: bool | None) -> dict:  # fmt: skip
    config = model_config(size)
    shape = config.shape()
    torch.manual_seed(0)
    ours = build_model(config, vocab_size=vocab, context=context, device=device)
    plain = PlainDecoder(shape, vocab, context).to(device)
    n_ours, n_plain = count_parameters(ours)[0], sum(p.numel() for p in plain.parameters())
    assert n_ours == n_plain, f"{size}: ours {n_ours} ≠ plain {n_plain} parameters"
    adamw = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    ours_opt = make_adamw(ours, **adamw, fused=OptimConfig(fused=fused).fused_on(device.type))
    plain_opt = torch.optim.AdamW(plain.parameters(), **adamw)
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, vocab, size=(batch, context + 1), dtype=np.int64) for _ in range(steps)]
    warmup = max(2, steps // 5)
    step_kwargs = dict(lr=1e-3, micro_batch=batch, grad_clip=1.0, device=device)
    sides = {
        "ours": lambda b: train_step(ours, ours_opt, b, **step_kwargs),
        "plain": lambda b: plain_step(plain, plain_opt, b, device),
    }
    compile_seconds = None
    if compile_model:
        compiled = torch.compile(ours)
        started = time.perf_counter()
        train_step(compiled, ours_opt, batches[0], **step_kwargs)  # the compile, outside the timing
        compile_seconds = time.perf_counter() - started
        sides["compiled"] = lambda b: train_step(compiled, ours_opt, b, **step_kwargs)
    best = dict.fromkeys(sides, float("inf"))
    # alternate rounds and keep each side's best: on a shared machine the minimum is the least disturbed time
    for _ in range(rounds):
        for name, step in sides.items():
            best[name] = min(best[name], timed(step, batches, warmup, device))
    tokens, flops = batch * context, flops_per_token_exact(shape, vocab, context)
    result = {"size": size, "device": device.type, "N": n_ours, "compile_s": compile_seconds}
    for name, seconds in best.items():
        result[f"{name}_tok_s"] = tokens / seconds
        result[f"{name}_flop_s"] = tokens / seconds * flops
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=None, help="w8 w20 w48 w96 (quickstart widths) or presets")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: one sweep job's share)")
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds per side (best kept)")
    parser.add_argument("--compile", action="store_true", help="also time ours under torch.compile")
    parser.add_argument("--fused", action=argparse.BooleanOptionalAction, default=None,
                        help="our AdamW fused or not (default: the trainer's, optim.fused=null)")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    defaults = {
        "cpu": ([*QUICKSTART_WIDTHS, "n100k", "n1m", "n3m"], 128, 16),
        "cuda": (["n25m", "n85m", "n300m"], 1024, 16),
    }
    for device in devices:
        sizes, context, batch = defaults[device.type]
        peak = matmul_peak(device)
        print(f"{device.type}: matmul peak {peak / 1e9:.1f} GFLOP/s ({args.threads} thread(s) on CPU)")
        header = f"{'size':6} {'N':>10} {'ours tok/s':>11} {'plain tok/s':>11} {'ours GFLOP/s':>12} {'% peak':>6}"
        compiled = f" {'compiled tok/s':>14} {'ratio':>6} {'compile s':>9}" if args.compile else ""
        print(f"{header} {'ratio':>6}{compiled}")
        for size in args.sizes or sizes:
            r = bench(size, device=device, vocab=args.vocab, context=context, batch=batch, steps=args.steps,
                      rounds=args.rounds, compile_model=args.compile, fused=args.fused)  # fmt: skip
            line = (f"{r['size']:6} {r['N']:>10,} {r['ours_tok_s']:>11.4g} {r['plain_tok_s']:>11.4g} "
                    f"{r['ours_flop_s'] / 1e9:>12.3g} {100 * r['ours_flop_s'] / peak:>5.1f}% "
                    f"{r['ours_tok_s'] / r['plain_tok_s']:>5.2f}×")  # fmt: skip
            if args.compile:
                line += (f" {r['compiled_tok_s']:>14.4g} {r['compiled_tok_s'] / r['plain_tok_s']:>5.2f}×"
                         f" {r['compile_s']:>9.1f}")  # fmt: skip
            print(line, flush=True)


if __name__ == "__main__":
    main()
