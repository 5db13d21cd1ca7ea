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

**Mixture of experts** (``n_experts > 1``, ``model/build.py`` builds a `transformers` Mixtral decoder): each layer's
SwiGLU MLP becomes ``n_experts`` SwiGLU experts of ``ffn / granularity`` hidden units each and a bias-free router
(``width × n_experts``); every token goes to the top ``experts_per_token`` experts (Shazeer et al. 2017; Fedus et al.
2022). Attention, norms and vocabulary matrices are as above. Two more counts follow:

* ``n_params_active`` / ``n_params_active_nonembed``: the parameters that touch each token — the k routed experts,
  the router, attention, norms (and the vocabulary matrices for the first). Compute per token scales with these, so
  budgets (6·N·D, tokens per parameter) and the size rules use them; for a dense model they equal the counts above.
* ``n_params_total`` / ``n_params_nonembed`` stay *all stored* parameters (every expert): what memory holds and
  what the built module counts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Optional

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
# Most routed experts per layer: far above published MoEs (Switch-C: 2048, Fedus et al. 2022; fine-grained
# DeepSeek-V3: 256, Krajewski et al. 2024 sweep up to 256 at granularity 16); keeps shape arithmetic cheap.
MAX_EXPERTS = 2**12
# Load-balancing auxiliary loss coefficient α: Fedus et al. 2022 (Switch Transformer, §2.2) use 1e-2, "large enough
# to ensure load balancing while small enough to not to overwhelm the primary cross-entropy objective".
ROUTER_AUX_LOSS_COEF = 0.01
MOE_FIELDS = ("n_experts", "experts_per_token", "granularity", "router_aux_loss_coef")
"""ModelConfig fields that only an MoE reads: a dense model's config leaves them out of its dict (and hash)."""


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
    n_experts: int = 1
    """Routed experts per layer; 1 is the dense decoder, more builds a top-k mixture of experts (Mixtral-style)."""
    experts_per_token: int = 1
    """Experts each token is routed to (top-k): 1 as in Switch (Fedus et al. 2022), 2 as in Mixtral."""
    granularity: int = 1
    """Each expert's hidden size is ffn_size / granularity (Krajewski et al. 2024's G); raise experts_per_token
    with it to keep the active parameters fixed."""
    router_aux_loss_coef: float = ROUTER_AUX_LOSS_COEF
    """Weight of the load-balancing auxiliary loss added to the training objective (Fedus et al. 2022: 0.01)."""

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
        self._check_experts()

    def _check_experts(self) -> None:
        """Experts, top-k and granularity fit together, and each expert gets a whole hidden size."""
        if not 1 <= self.n_experts <= MAX_EXPERTS:
            raise ConfigError(f"model.n_experts={self.n_experts} must lie in [1, {MAX_EXPERTS}] (1 is dense)")
        if not 1 <= self.experts_per_token <= self.n_experts:
            raise ConfigError(f"model.experts_per_token={self.experts_per_token} must lie in 1..model.n_experts="
                              f"{self.n_experts}: lower it or raise model.n_experts")  # fmt: skip
        if self.granularity < 1:
            raise ConfigError(f"model.granularity={self.granularity} must be ≥ 1 (1: experts as wide as the dense MLP)")
        if self.n_experts == 1 and self.granularity != 1:
            raise ConfigError(f"model.granularity={self.granularity} needs experts: with model.n_experts=1 (dense) set"
                              " model.granularity=1, or narrow the MLP with model.ffn_size")  # fmt: skip
        if not self.router_aux_loss_coef >= 0:
            raise ConfigError(f"model.router_aux_loss_coef={self.router_aux_loss_coef} must be ≥ 0 (0.01 is usual)")
        ffn = self.ffn_size if self.ffn_size is not None else self._base_shape().ffn_size
        if ffn % self.granularity:
            raise ConfigError(f"model.granularity={self.granularity} does not divide the MLP's hidden size {ffn}:"
                              f" choose a divisor of {ffn}")  # fmt: skip

    @property
    def is_moe(self) -> bool:
        """Whether the MLPs are routed experts."""
        return self.n_experts > 1

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data; a dense model's leaves out the expert fields (:data:`MOE_FIELDS`), so its dict
        and config hash are those of a dense config written before experts existed."""
        values = dataclasses.asdict(self)
        if not self.is_moe:
            for name in MOE_FIELDS:
                values.pop(name)
        return values

    def name(self) -> str:
        """Readable model name for run ids: the preset, target or ``custom``, then ``-e<E>k<k>[g<G>]`` for an MoE."""
        base = self.preset or (f"target{self.target_n:.2g}" if self.target_n else "custom")
        if not self.is_moe:
            return base
        return f"{base}-e{self.n_experts}k{self.experts_per_token}" + (
            f"g{self.granularity}" if self.granularity > 1 else ""
        )

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

    def _base_shape(self) -> Shape:
        """The dense shape of the preset, the target rule (by active parameters) or the explicit fields."""
        if self.preset is not None:
            return PRESETS[self.preset]
        if self.target_n is not None:
            return shape_for_target_n(
                self.target_n, experts_per_token=self.experts_per_token, granularity=self.granularity
            )
        return Shape(n_layers=self.n_layers, width=self.width, n_heads=self.n_heads)

    def shape(self) -> Shape:
        """The concrete shape this config asks for."""
        base = self._base_shape()
        ffn = self.ffn_size if self.ffn_size is not None else base.ffn_size
        return Shape(n_layers=base.n_layers, width=base.width, n_heads=base.n_heads, ffn_size=ffn,
                     n_experts=self.n_experts, experts_per_token=self.experts_per_token,
                     expert_ffn_size=ffn // self.granularity)  # fmt: skip


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
    n_experts: int = 1
    """Routed experts per layer (1: the dense MLP, no router)."""
    experts_per_token: int = 1
    """Experts each token passes through (top-k)."""
    expert_ffn_size: int | None = None
    """Each expert's SwiGLU hidden size; None → ffn_size (filled in on construction)."""

    def __post_init__(self) -> None:
        if self.ffn_size is None:
            object.__setattr__(self, "ffn_size", swiglu_ffn_size(self.width))
        if self.expert_ffn_size is None:
            object.__setattr__(self, "expert_ffn_size", self.ffn_size)
        check_heads(self.width, self.n_heads)

    @property
    def head_size(self) -> int:
        """width / n_heads."""
        return self.width // self.n_heads

    @property
    def router_params(self) -> int:
        """Router weights of one layer: width × n_experts, none for a dense MLP."""
        return self.width * self.n_experts if self.n_experts > 1 else 0

    @property
    def granularity(self) -> float:
        """ffn_size / expert_ffn_size: Krajewski et al. 2024's G (1 for a dense model)."""
        return self.ffn_size / self.expert_ffn_size


def params_per_layer(shape: Shape, *, active: bool = False) -> int:
    """Attention q,k,v,o (4·d²) + SwiGLU gate/up/down (3·d·ffn) per expert + router (d·E) + two RMSNorm weights
    (2·d). Every expert is counted, or with ``active`` only the experts_per_token a token passes through."""
    d = shape.width
    experts = shape.experts_per_token if active else shape.n_experts
    return 4 * d * d + experts * 3 * d * shape.expert_ffn_size + shape.router_params + 2 * d


def n_params_nonembed(shape: Shape, *, active: bool = False) -> int:
    """Non-embedding parameters: all layers plus the final RMSNorm (no vocabulary matrix); every expert, or with
    ``active`` the experts a token uses."""
    return shape.n_layers * params_per_layer(shape, active=active) + shape.width


def n_params_total(shape: Shape, vocab_size: int, *, tied: bool, active: bool = False) -> int:
    """All parameters: non-embedding + input embedding + (untied) output head (``active``: as above)."""
    vocab_matrices = 1 if tied else 2
    return n_params_nonembed(shape, active=active) + vocab_matrices * vocab_size * shape.width


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

    An MoE layer replaces the MLP term by the router's logits, 2·S·d·E, and the k experts each token passes
    through, k · 2·S·3·d·ffn_expert; the router's softmax and top-k and the weighting of expert outputs are left
    out like the other elementwise work (each is O(E) or O(k·d) per token against O(d²) matrix products).
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
    mlp = shape.experts_per_token * 2 * S * 3 * d * shape.expert_ffn_size + 2 * S * shape.router_params
    total = 2 * S * V * d + shape.n_layers * (attention + mlp) + 2 * S * d * V
    return total / S


def flops_per_token_exact(shape: Shape, vocab_size: int, context: int) -> float:
    """Training FLOPs per token: forward × 3 (Chinchilla Appendix F: backward = 2 × forward)."""
    return 3.0 * forward_flops_per_token_exact(shape, vocab_size, context)


def shape_for_target_n(target_nonembed: float, *, experts_per_token: int = 1, granularity: int = 1) -> Shape:
    """The shape with about ``target_nonembed`` non-embedding parameters at width/depth = :data:`ASPECT_RATIO`.

    With ffn = 8/3·d, a layer holds ≈ 12·d² parameters, so N ≈ 12·L·d² = 12·a²·L³ and L = (N / 12a²)^(1/3).
    For an MoE the target is the *active* count: k experts of ffn/G units hold 8·(k/G)·d² per layer, so the
    12 becomes 4 + 8·k/G (the router's d·E is left to the final choice, which compares active counts); the
    returned shape is the dense one, to which the caller adds its experts.
    Below one layer at the full aspect ratio (N < ~5e4) the depth stays 1 and the width shrinks (d = √(N/12)),
    rounded to a multiple of 8; heads are 64 wide when the width allows, else one head per 32 (at least one).
    The depth with the closest count among L-1, L, L+1 wins.
    """
    if not target_nonembed > 0:
        raise ConfigError(f"model.target_n={target_nonembed} must be > 0")
    per_layer = 4 + 8 * experts_per_token / granularity  # active parameters per layer in units of d²
    ideal_layers = (target_nonembed / (per_layer * ASPECT_RATIO**2)) ** (1 / 3)
    candidates = []
    for layers in {max(1, math.floor(ideal_layers)), max(1, math.ceil(ideal_layers)), max(1, round(ideal_layers) + 1)}:
        width = math.sqrt(target_nonembed / (per_layer * layers))
        width = (
            max(8, 8 * round(width / 8))
            if layers == 1 or width < HEAD_SIZE
            else HEAD_SIZE * max(1, round(width / HEAD_SIZE))
        )
        candidates.append(Shape(n_layers=layers, width=width, n_heads=_heads_for_width(width)))

    def active(shape: Shape) -> int:  # the candidate's active count with k experts of ffn/G (router excluded)
        ffn = shape.ffn_size // granularity
        routed = Shape(n_layers=shape.n_layers, width=shape.width, n_heads=shape.n_heads, ffn_size=ffn,
                       n_experts=experts_per_token, experts_per_token=experts_per_token)  # fmt: skip
        return n_params_nonembed(routed, active=True) - shape.n_layers * routed.router_params

    return min(candidates, key=lambda s: abs(math.log(active(s) / target_nonembed)))


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
