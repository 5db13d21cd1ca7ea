"""Throughput of our training step against a minimal plain-PyTorch decoder of identical shape.

Both models have the same N (checked), vocabulary, context and batch; both train with AdamW (fused on CUDA),
gradient clipping 1.0, bf16 autocast on CUDA / fp32 on CPU, on the same random token batches, in this process.
Prints tokens/s and achieved FLOP/s (Chinchilla App. F count) per size, and the ratio ours / plain
(target ≥ 1.0×: the transformers model must not cost us speed).

    python scripts/bench_train.py                    # CPU always; CUDA too when present
    python scripts/bench_train.py --sizes n100k n1m --steps 20 --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional

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


def bench(preset: str, *, device: torch.device, vocab: int, context: int, batch: int, steps: int, rounds: int) -> dict:
    config = ModelConfig(preset=preset)
    shape = config.shape()
    torch.manual_seed(0)
    ours = build_model(config, vocab_size=vocab, context=context, device=device)
    plain = PlainDecoder(shape, vocab, context).to(device)
    n_ours, n_plain = count_parameters(ours)[0], sum(p.numel() for p in plain.parameters())
    assert n_ours == n_plain, f"{preset}: ours {n_ours} ≠ plain {n_plain} parameters"
    fused = device.type == "cuda"
    adamw = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, fused=fused)
    ours_opt = make_adamw(ours, **adamw)
    plain_opt = torch.optim.AdamW(plain.parameters(), **adamw)
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, vocab, size=(batch, context + 1), dtype=np.int64) for _ in range(steps)]
    warmup = max(2, steps // 5)
    step_kwargs = dict(lr=1e-3, micro_batch=batch, grad_clip=1.0, device=device)
    results = {}
    # alternate rounds and keep each side's best: on a shared machine the minimum is the least disturbed time
    for _ in range(rounds):
        t_ours = timed(lambda b: train_step(ours, ours_opt, b, **step_kwargs), batches, warmup, device)
        t_plain = timed(lambda b: plain_step(plain, plain_opt, b, device), batches, warmup, device)
        results.setdefault("ours", []).append(t_ours)
        results.setdefault("plain", []).append(t_plain)
    tokens = batch * context
    flops = flops_per_token_exact(shape, vocab, context)
    ours_tps, plain_tps = tokens / min(results["ours"]), tokens / min(results["plain"])
    return {
        "preset": preset, "device": device.type, "N": n_ours, "ours_tok_s": ours_tps, "plain_tok_s": plain_tps,
        "ours_flop_s": ours_tps * flops, "plain_flop_s": plain_tps * flops, "ratio": ours_tps / plain_tps,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs=3, default=None, help="three presets (default: per device)")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds per side (best kept)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    defaults = {"cpu": (["n100k", "n1m", "n3m"], 128, 16), "cuda": (["n25m", "n85m", "n300m"], 1024, 16)}
    print(f"{'device':6} {'preset':7} {'N':>12} {'ours tok/s':>12} {'plain tok/s':>12} "
          f"{'ours FLOP/s':>12} {'plain FLOP/s':>12} {'ratio':>6}")  # fmt: skip
    for device in devices:
        sizes, context, batch = defaults[device.type]
        for preset in args.sizes or sizes:
            r = bench(preset, device=device, vocab=args.vocab, context=context, batch=batch, steps=args.steps,
                      rounds=args.rounds)  # fmt: skip
            print(f"{r['device']:6} {r['preset']:7} {r['N']:>12,} {r['ours_tok_s']:>12.4g} {r['plain_tok_s']:>12.4g} "
                  f"{r['ours_flop_s']:>12.4g} {r['plain_flop_s']:>12.4g} {r['ratio']:>5.2f}×")  # fmt: skip


if __name__ == "__main__":
    main()
