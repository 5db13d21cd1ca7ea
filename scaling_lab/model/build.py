"""Build the decoder: a `transformers` Llama model (RMSNorm, rotary embeddings, SwiGLU, SDPA) with random init.

Why Llama-style: it is the architecture of most current open models and of the Porian et al. 2024 and
Hägele et al. 2024 sweeps we compare against; pre-norm RMSNorm + rotary + SwiGLU trains stably at every size
from 1e3 to 1e9 parameters without learned position embeddings (which would add a context-dependent
embedding count to N). Nothing is downloaded: the config is built locally and weights are random.

A mixture of experts (``model.n_experts > 1``) is a `transformers` Mixtral decoder: the same attention, norms,
rotary embeddings and vocabulary matrices, with each SwiGLU MLP replaced by a bias-free router and ``n_experts``
SwiGLU experts. Its routing is exact top-k (softmax over the router logits, the k largest renormalised to sum to 1;
Jiang et al. 2024, eq. 1), computed densely on any device (no capacity limit, no dropped tokens), and
``output_router_logits`` makes every forward return the load-balancing loss of Fedus et al. 2022 (eq. 4) as
``aux_loss``, which the training step adds to the cross-entropy. Qwen2-MoE adds a shared expert and OLMoE a
query/key norm; Mixtral is the one whose dense limit is our Llama layer.
"""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM

from scaling_lab.model.shapes import ModelConfig, Shape


def _decoder_settings(shape: Shape, *, vocab_size: int, context: int, model: ModelConfig) -> dict:
    """What the dense and the MoE decoder share: multi-head attention, no biases, SDPA attention, no cache."""
    return dict(
        vocab_size=vocab_size,
        hidden_size=shape.width,
        num_hidden_layers=shape.n_layers,
        num_attention_heads=shape.n_heads,
        num_key_value_heads=shape.n_heads,
        max_position_embeddings=context,
        rms_norm_eps=model.norm_eps,
        rope_theta=model.rope_theta,
        initializer_range=model.init_std,
        tie_word_embeddings=model.tie_embeddings,
        attn_implementation="sdpa",
        use_cache=False,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )


def llama_config(shape: Shape, *, vocab_size: int, context: int, model: ModelConfig) -> LlamaConfig:
    """The `transformers` config for ``shape``: the shared decoder settings and a SwiGLU MLP without biases."""
    return LlamaConfig(**_decoder_settings(shape, vocab_size=vocab_size, context=context, model=model),
                       intermediate_size=shape.ffn_size, attention_bias=False, mlp_bias=False)  # fmt: skip


def mixtral_config(shape: Shape, *, vocab_size: int, context: int, model: ModelConfig) -> MixtralConfig:
    """The `transformers` config of the MoE decoder for ``shape``: the Llama layer's settings, experts for MLPs."""
    return MixtralConfig(
        **_decoder_settings(shape, vocab_size=vocab_size, context=context, model=model),
        intermediate_size=shape.expert_ffn_size,
        num_local_experts=shape.n_experts,
        num_experts_per_tok=shape.experts_per_token,
        output_router_logits=True,
        router_aux_loss_coef=model.router_aux_loss_coef,
        router_jitter_noise=0.0,
        sliding_window=None,
    )


def build_model(
    model: ModelConfig, *, vocab_size: int, context: int, device: str | torch.device = "cpu"
) -> LlamaForCausalLM | MixtralForCausalLM:
    """A randomly initialised decoder on ``device`` (``"meta"`` builds the structure without memory): Llama, or
    Mixtral for an MoE.

    Seed torch before calling for a reproducible init.
    """
    make_config, make_model = (mixtral_config, MixtralForCausalLM) if model.is_moe else (llama_config, LlamaForCausalLM)
    config = make_config(model.shape(), vocab_size=vocab_size, context=context, model=model)
    with torch.device(device):
        return make_model(config)


def count_parameters(module: torch.nn.Module) -> tuple[int, int]:
    """(total, non-embedding) trainable parameters of a built module, shared tensors counted once.

    Non-embedding excludes the input embedding and the output head (when untied), as in ``shapes.py``.
    """
    unique = {id(p): p for p in module.parameters() if p.requires_grad}
    total = sum(p.numel() for p in unique.values())
    vocab_ids = {id(module.get_input_embeddings().weight), id(module.get_output_embeddings().weight)}
    embed = sum(unique[i].numel() for i in vocab_ids if i in unique)
    return total, total - embed


def count_active_parameters(module: torch.nn.Module) -> tuple[int, int]:
    """(total, non-embedding) parameters that touch one token of a built module: all of them for a dense model;
    for an MoE, every layer's experts beyond the top k are subtracted, each expert's size read off the module."""
    total, nonembed = count_parameters(module)
    config = module.config
    idle = getattr(config, "num_local_experts", 1) - getattr(config, "num_experts_per_tok", 1)
    if idle <= 0:
        return total, nonembed
    expert_sizes = [
        (experts.gate_up_proj[0].numel() + experts.down_proj[0].numel())
        for name, experts in module.named_modules()
        if name.endswith("mlp.experts")
    ]
    idle_params = idle * sum(expert_sizes)
    return total - idle_params, nonembed - idle_params
