"""Bits per byte, checked by hand: a real tiny Llama whose output layer is zeroed predicts uniformly, so each scored
token costs exactly ln(vocabulary) nats, and bpb is that times the scored tokens over ln 2 times the scored bytes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scaling_lab.data import UNION, EvalSet
from scaling_lab.model.build import build_model
from scaling_lab.model.shapes import ModelConfig
from scaling_lab.train.step import evaluate_suite

SEPARATOR = 0


def held_out(name: str, text: bytes, length: int) -> EvalSet:
    ids = np.frombuffer(text, dtype=np.uint8).astype(np.int64)
    windows = (len(ids) - 1) // length
    sequences = np.stack([ids[i * length : i * length + length + 1] for i in range(windows)])
    window_bytes = (sequences[:, 1:] != SEPARATOR).sum(axis=1)  # the separator stands for no text
    return EvalSet(name=name, sequences=sequences, window_bytes=window_bytes, start=0, fingerprint=name)


def test_bits_per_byte_by_hand():
    torch.manual_seed(0)
    model = build_model(ModelConfig(preset="n1k"), vocab_size=256, context=8, device=torch.device("cpu"))
    with torch.no_grad():
        model.get_output_embeddings().weight.zero_()  # every logit 0: a uniform next-byte distribution
    prose = held_out("prose", b"A cat sat.\0The dog ran far.\0Birds fly.\0" * 2, 8)  # 80 bytes: 9 windows
    code = held_out("code", "def f(x):\n    return x  # ü\0".encode() * 2, 8)  # 60 bytes (ü is two): 7 windows
    scores = evaluate_suite(model, [prose, code], micro_batch=4, device=torch.device("cpu"))
    nats_per_token = math.log(256)
    for held in (prose, code):
        scored_tokens = held.sequences.shape[0] * 8
        scored_bytes = int((held.sequences[:, 1:] != SEPARATOR).sum())
        assert scores.losses[held.name] == pytest.approx(nats_per_token, rel=1e-6)
        assert scores.bpb[held.name] == pytest.approx(nats_per_token * scored_tokens / (math.log(2) * scored_bytes))
    assert (prose.sequences.shape[0], code.sequences.shape[0]) == (9, 7)
    tokens, text_bytes = (9 + 7) * 8, int(prose.window_bytes.sum() + code.window_bytes.sum())
    assert scores.losses[UNION] == pytest.approx(nats_per_token, rel=1e-6) and scores.loss == scores.losses[UNION]
    assert scores.bpb[UNION] == pytest.approx(nats_per_token * tokens / (math.log(2) * text_bytes))
    assert scores.bpb[UNION] > 8.0  # separators carry no byte: above log2(256) bits for each byte of text
