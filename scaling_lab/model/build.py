"""Build the decoder: a `transformers` Llama model (RMSNorm, rotary embeddings, SwiGLU, SDPA) with random init.

Why Llama-style: it is the architecture of most current open models and of the Porian et al. 2024 and
Hägele et al. 2024 sweeps we compare against; pre-norm RMSNorm + rotary + SwiGLU trains stably at every size
from 1e3 to 1e9 parameters without learned position embeddings (which would add a context-dependent
embedding count to N). Nothing is downloaded: the config is built locally and weights are random.
"""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from scaling_lab.model.shapes import ModelConfig, Shape


def llama_config(shape: Shape, *, vocab_size: int, context: int, model: ModelConfig) -> LlamaConfig:
    """The `transformers` config for ``shape``: multi-head attention, no biases, SDPA attention."""
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=shape.width,
        intermediate_size=shape.ffn_size,
        num_hidden_layers=shape.n_layers,
        num_attention_heads=shape.n_heads,
        num_key_value_heads=shape.n_heads,
        max_position_embeddings=context,
        rms_norm_eps=model.norm_eps,
        rope_theta=model.rope_theta,
        initializer_range=model.init_std,
        tie_word_embeddings=model.tie_embeddings,
        attention_bias=False,
        mlp_bias=False,
        attn_implementation="sdpa",
        use_cache=False,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )


def build_model(
    model: ModelConfig, *, vocab_size: int, context: int, device: str | torch.device = "cpu"
) -> LlamaForCausalLM:
    """A randomly initialised decoder on ``device`` (``"meta"`` builds the structure without memory).

    Seed torch before calling for a reproducible init.
    """
    config = llama_config(model.shape(), vocab_size=vocab_size, context=context, model=model)
    with torch.device(device):
        return LlamaForCausalLM(config)


def count_parameters(module: torch.nn.Module) -> tuple[int, int]:
    """(total, non-embedding) trainable parameters of a built module, shared tensors counted once.

    Non-embedding excludes the input embedding and the output head (when untied), as in ``shapes.py``.
    """
    unique = {id(p): p for p in module.parameters() if p.requires_grad}
    total = sum(p.numel() for p in unique.values())
    vocab_ids = {id(module.get_input_embeddings().weight), id(module.get_output_embeddings().weight)}
    embed = sum(unique[i].numel() for i in vocab_ids if i in unique)
    return total, total - embed
