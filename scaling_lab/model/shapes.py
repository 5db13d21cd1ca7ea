"""Model shapes: size presets, the target-N rule, and N and FLOPs per token computed without building a model.

The architecture is a Llama-style decoder (``model/build.py``): per layer, attention with four bias-free
``width × width`` projections (q, k, v, o; multi-head, no grouped KV), a SwiGLU MLP with three bias-free
``width × ffn`` matrices, and two RMSNorm weight vectors; one final RMSNorm; an input embedding and an output
head of ``vocab × width`` each (one shared matrix when tied). Rotary embeddings have no parameters.

**N** is defined once, here:

* ``n_params_total``: every trainable parameter of the built module (the tied matrix counted once).
* ``n_params_nonembed``: total minus the input embedding and, when untied, minus the output head — the
  Kaplan et al. 2020 (§2.1) convention of excluding vocabulary matrices; norms stay in. Pearce & Song 2024 show
  this choice bends fitted exponents at small N, so records carry both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from scaling_lab.errors import ConfigError

# Width/depth aspect ratio of the target-N rule. Kaplan et al. 2020 (Fig. 5) find loss within a few percent
# over width/depth 20–200 at fixed N; 64 sits in that flat region and gives Llama-like shapes at 1e8–1e9
# (e.g. 24 layers × 1536).
ASPECT_RATIO = 64
# Attention head size of the target-N rule once the width allows it (GPT-2, Llama and Chinchilla use 64–128).
HEAD_SIZE = 64
# Upper bounds on a shape, far above any dense model trained (PaLM 540B: 118 layers of width 18 432, Chowdhery et
# al. 2022), that keep shape arithmetic cheap and exact; whether a shape fits a machine is decided by the memory check
# before a run starts (train/preflight.py). MAX_TARGET_N's shape (2730 layers × 174 720) stays within the others.
MAX_LAYERS = 2**14
MAX_WIDTH = 2**18
MAX_FFN_SIZE = 2**20
MAX_TARGET_N = 1e15


def swiglu_ffn_size(width: int) -> int:
    """SwiGLU hidden size: 8/3 · width rounded up to a multiple of 8.

    Shazeer 2020 (GLU variants, §2) scales the hidden size by 2/3 so that three matrices hold the parameters of
    a 4·width two-matrix MLP; Touvron et al. 2023 (Llama) use the same 2/3 · 4d, rounded up to a multiple.
    """
    return 8 * math.ceil(8 * width / 3 / 8)


@dataclass(kw_only=True)
class ModelConfig:
    """Shape of the decoder. Either ``preset`` or explicit ``n_layers``/``width``/``n_heads`` (or ``target_n``)."""

    preset: Optional[str] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    """Name in :data:`PRESETS` (e.g. ``n7k``, ``n85m``); fills n_layers/width/n_heads. None to give them."""
    target_n: Optional[float] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    """Ask for about this many non-embedding parameters; shape from :func:`shape_for_target_n`."""
    n_layers: Optional[int] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    """Decoder layers."""
    width: Optional[int] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    """Residual stream size (d_model)."""
    n_heads: Optional[int] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    """Attention heads; must divide width, and width / n_heads must be even (rotary embeddings)."""
    ffn_size: Optional[int] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    """SwiGLU hidden size; None for :func:`swiglu_ffn_size` (8/3 · width)."""
    tie_embeddings: bool = False
    """Share the input embedding and output head (Llama does not; tiny models often do)."""
    rope_theta: float = 10_000.0
    """Rotary base (Su et al. 2021; Llama 1/2 use 10 000)."""
    init_std: float = 0.02
    """Normal init std of every weight matrix (GPT-2 / Llama, `initializer_range`)."""
    norm_eps: float = 1e-5
    """RMSNorm epsilon (Llama 2)."""

    def __post_init__(self) -> None:
        chosen = [self.preset is not None, self.target_n is not None]
        if sum(chosen) > 1:
            raise ConfigError("model.preset and model.target_n are both set: keep one of them (model.preset=null)")
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(
                f"model.preset={self.preset!r} is unknown: choose one of {', '.join(PRESETS)}"
                " or set model.preset=null and give model.n_layers/width/n_heads"
            )
        if self.target_n is not None and not 0 < self.target_n <= MAX_TARGET_N:
            raise ConfigError(
                f"model.target_n={self.target_n} must lie in (0, {MAX_TARGET_N:g}] (e.g. model.target_n=1e6)"
            )
        if any(chosen):
            self._check_no_explicit_shape()
        else:
            for name in ("n_layers", "width", "n_heads"):
                value = getattr(self, name)
                if value is None:
                    raise ConfigError(
                        f"model.{name} is missing: give model.preset (one of {', '.join(PRESETS)}),"
                        " model.target_n, or all of model.n_layers/width/n_heads"
                    )
                if value < 1:
                    raise ConfigError(f"model.{name}={value} must be ≥ 1")
            for name, most in (("n_layers", MAX_LAYERS), ("width", MAX_WIDTH)):
                if getattr(self, name) > most:
                    raise ConfigError(f"model.{name}={getattr(self, name)} is above {most}: choose a smaller model")
            check_heads(self.width, self.n_heads)
        if self.ffn_size is not None and not 1 <= self.ffn_size <= MAX_FFN_SIZE:
            raise ConfigError(
                f"model.ffn_size={self.ffn_size} must lie in [1, {MAX_FFN_SIZE}] (or null for 8/3 · width)"
            )
        for name, usual in (("init_std", "0.02"), ("rope_theta", "10000"), ("norm_eps", "1e-5")):
            if not getattr(self, name) > 0:
                raise ConfigError(f"model.{name}={getattr(self, name)} must be > 0 ({usual} is usual)")

    def _check_no_explicit_shape(self) -> None:
        """A preset or target_n fixes n_layers/width/n_heads, so a value given beside it would be ignored: refuse.

        None means "not given": it is the field default, and the preset files (configs/model/n*.yaml) and
        target.yaml set only ``preset`` or ``target_n`` (a file or override setting a field to null leaves it None
        too). A value here therefore came from the user: an override (``model.n_heads=3``) or an explicit-shape
        group (``model=custom``) combined with ``model.preset=...``. ffn_size is not refused: it applies to presets.
        """
        given = [f"model.{name}={getattr(self, name)}" for name in ("n_layers", "width", "n_heads")
                 if getattr(self, name) is not None]  # fmt: skip
        if not given:
            return
        chosen = f"model.preset={self.preset}" if self.preset is not None else f"model.target_n={self.target_n:g}"
        raise ConfigError(
            f"{chosen} fixes the shape, so {', '.join(given)} would be ignored: drop"
            f" {'it' if len(given) == 1 else 'them'}, or set {chosen.split('=')[0]}=null and give all of"
            " model.n_layers/width/n_heads (as model=custom does)"
        )

    def shape(self) -> Shape:
        """The concrete shape this config asks for."""
        if self.preset is not None:
            base = PRESETS[self.preset]
        elif self.target_n is not None:
            base = shape_for_target_n(self.target_n)
        else:
            base = Shape(n_layers=self.n_layers, width=self.width, n_heads=self.n_heads)
        ffn = self.ffn_size if self.ffn_size is not None else base.ffn_size
        return Shape(n_layers=base.n_layers, width=base.width, n_heads=base.n_heads, ffn_size=ffn)


def check_heads(width: int, n_heads: int) -> None:
    """Raise ConfigError unless n_heads divides width into even head sizes (rotary needs pairs)."""
    if n_heads < 1 or width % n_heads or (width // n_heads) % 2:
        divisors = [h for h in range(1, width + 1) if width % h == 0 and (width // h) % 2 == 0]
        raise ConfigError(
            f"model.n_heads={n_heads} does not divide model.width={width} into even head sizes:"
            f" choose n_heads among {', '.join(map(str, divisors[:12]))}"
        )


@dataclass(frozen=True, kw_only=True)
class Shape:
    """A concrete decoder shape; all counts below derive from it and the vocabulary size."""

    n_layers: int
    """Decoder layers."""
    width: int
    """Residual stream size (d_model)."""
    n_heads: int
    """Attention heads."""
    ffn_size: int | None = None
    """SwiGLU hidden size; None → :func:`swiglu_ffn_size` (filled in on construction, never None after)."""

    def __post_init__(self) -> None:
        if self.ffn_size is None:
            object.__setattr__(self, "ffn_size", swiglu_ffn_size(self.width))
        check_heads(self.width, self.n_heads)

    @property
    def head_size(self) -> int:
        """width / n_heads."""
        return self.width // self.n_heads


def params_per_layer(shape: Shape) -> int:
    """Attention q,k,v,o (4·d²) + SwiGLU gate/up/down (3·d·ffn) + two RMSNorm weights (2·d)."""
    d = shape.width
    return 4 * d * d + 3 * d * shape.ffn_size + 2 * d


def n_params_nonembed(shape: Shape) -> int:
    """Non-embedding parameters: all layers plus the final RMSNorm (no vocabulary matrix)."""
    return shape.n_layers * params_per_layer(shape) + shape.width


def n_params_total(shape: Shape, vocab_size: int, *, tied: bool) -> int:
    """All parameters: non-embedding + input embedding + (untied) output head."""
    vocab_matrices = 1 if tied else 2
    return n_params_nonembed(shape) + vocab_matrices * vocab_size * shape.width


def forward_flops_per_token_exact(shape: Shape, vocab_size: int, context: int) -> float:
    """Forward FLOPs per token as in Hoffmann et al. 2022 (Chinchilla), Appendix F, per sequence / context.

    Terms, per sequence of ``context`` tokens (one multiply-add = 2 FLOPs):
      embeddings        2·S·V·d
      per layer: q,k,v  2·3·S·d·(h·k)          (k = head size, h·k = d here)
                 logits 2·S·S·(h·k)
                 softmax 3·h·S·S
                 values 2·S·S·(h·k)
                 output 2·S·(h·k)·d
                 MLP    2·S·3·d·ffn            (Appendix F has 2 matrices; SwiGLU has 3)
      final logits      2·S·d·V
    Causal masking is not subtracted (Appendix F does not). RMSNorm, rotary and the nonlinearity are left out,
    as Appendix F leaves out layer norms and biases.
    """
    S, d, V = context, shape.width, vocab_size
    heads_times_size = shape.n_heads * shape.head_size
    attention = (
        2 * 3 * S * d * heads_times_size
        + 2 * S * S * heads_times_size
        + 3 * shape.n_heads * S * S
        + 2 * S * S * heads_times_size
        + 2 * S * heads_times_size * d
    )
    mlp = 2 * S * 3 * d * shape.ffn_size
    total = 2 * S * V * d + shape.n_layers * (attention + mlp) + 2 * S * d * V
    return total / S


def flops_per_token_exact(shape: Shape, vocab_size: int, context: int) -> float:
    """Training FLOPs per token: forward × 3 (Chinchilla Appendix F: backward = 2 × forward)."""
    return 3.0 * forward_flops_per_token_exact(shape, vocab_size, context)


def shape_for_target_n(target_nonembed: float) -> Shape:
    """The shape with about ``target_nonembed`` non-embedding parameters at width/depth = :data:`ASPECT_RATIO`.

    With ffn = 8/3·d, a layer holds ≈ 12·d² parameters, so N ≈ 12·L·d² = 12·a²·L³ and L = (N / 12a²)^(1/3).
    Below one layer at the full aspect ratio (N < ~5e4) the depth stays 1 and the width shrinks (d = √(N/12)),
    rounded to a multiple of 8; heads are 64 wide when the width allows, else one head per 32 (at least one).
    The depth with the closest count among L-1, L, L+1 wins.
    """
    if not target_nonembed > 0:
        raise ConfigError(f"model.target_n={target_nonembed} must be > 0")
    ideal_layers = (target_nonembed / (12 * ASPECT_RATIO**2)) ** (1 / 3)
    candidates = []
    for layers in {max(1, math.floor(ideal_layers)), max(1, math.ceil(ideal_layers)), max(1, round(ideal_layers) + 1)}:
        width = math.sqrt(target_nonembed / (12 * layers))
        width = (
            max(8, 8 * round(width / 8))
            if layers == 1 or width < HEAD_SIZE
            else HEAD_SIZE * max(1, round(width / HEAD_SIZE))
        )
        candidates.append(Shape(n_layers=layers, width=width, n_heads=_heads_for_width(width)))
    return min(candidates, key=lambda s: abs(math.log(n_params_nonembed(s) / target_nonembed)))


def _heads_for_width(width: int) -> int:
    """64-wide heads from width 128 on; below that one head per 32 of width, at least one (and even sizes)."""
    if width >= 2 * HEAD_SIZE and width % HEAD_SIZE == 0:
        return width // HEAD_SIZE
    heads = max(1, width // 32)
    while width % heads or (width // heads) % 2:
        heads -= 1
    return heads


# Size presets, named by their approximate non-embedding N. Tiny ones run on a CPU in seconds (the 7k one is the
# smallest size that kept improving at 1e12 FLOPs on bytes); the large ones are Chinchilla/Pythia-like
# GPU shapes. Counts are checked against built modules in tests/model/test_shapes.py.
PRESETS: dict[str, Shape] = {
    "n1k": Shape(n_layers=1, width=8, n_heads=1),
    "n3k": Shape(n_layers=1, width=16, n_heads=1),
    "n7k": Shape(n_layers=1, width=24, n_heads=1),
    "n12k": Shape(n_layers=1, width=32, n_heads=1),
    "n25k": Shape(n_layers=2, width=32, n_heads=2),
    "n50k": Shape(n_layers=1, width=64, n_heads=2),
    "n100k": Shape(n_layers=2, width=64, n_heads=2),
    "n200k": Shape(n_layers=4, width=64, n_heads=2),
    "n400k": Shape(n_layers=2, width=128, n_heads=2),
    "n1m": Shape(n_layers=4, width=160, n_heads=4),
    "n3m": Shape(n_layers=4, width=256, n_heads=4),
    "n10m": Shape(n_layers=6, width=384, n_heads=6),
    "n25m": Shape(n_layers=8, width=512, n_heads=8),
    "n85m": Shape(n_layers=12, width=768, n_heads=12),
    "n300m": Shape(n_layers=24, width=1024, n_heads=16),
    "n600m": Shape(n_layers=24, width=1408, n_heads=22),
    "n1b": Shape(n_layers=24, width=1856, n_heads=29),
}
