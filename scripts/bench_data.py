"""Benchmark the data layer: tokenize + cache the embedded corpus from scratch, loader vs training step, eval SE.

    python scripts/bench_data.py                      # byte tokenizer, sequence length 128, batch 32
    python scripts/bench_data.py --tokenizer bpe --vocab-size 4096
    python scripts/bench_data.py --scale-mb 1024 --tokenizer bpe --vocab-size 32768   # only part 4, >= 1 GB

1. Copies the built corpus (python -m scaling_lab.data.corpus build) into an empty cache and times
   prepare_data on it: reading through `datasets`, tokenizing, writing and checksumming the memmaps.
   Target: <= 30 s on 2 cores.
2. Times train_sequences for one batch against a forward+backward+AdamW step of a tiny
   transformers.LlamaForCausalLM (hidden 32, 2 layers, 2 heads, vocabulary 256, context = sequence length).
   Target: loader <= 2 % of the step.
3. Trains that model briefly and measures the standard error of the mean eval loss over the default eval
   set, with sequences as the sampling unit (so correlation inside a sequence is accounted for).
   Target: < 0.5 % of the loss.
4. With --scale-mb M (then only this part): repeats the embedded corpus's documents into one jsonl file of at least
   M MB and builds its token cache from scratch with 1, 2, ... up to the usable cores worker processes, printing
   MB/s of text in all and per core and the speed-up over one core (target: >= 1.8x from 1 to 2 cores). For a BPE
   it also times `tokenizers`' own encode_batch on the same documents with all cores (the encode calls only,
   reading excluded) and prints the ratio of the whole cache build (read, encode, write, checksum) to it (target:
   within 20 %, a ratio >= 0.8).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import statistics
import tempfile
import time

import numpy as np
import torch

from scaling_lab.cores import usable_cores
from scaling_lab.data import bpe_training_sample, data_config_from_dict, default_cache_dir, prepare_data
from scaling_lab.data.cache import SHARD_DOCUMENTS, cached_tokens
from scaling_lab.data.config import SourceConfig, TokenizerConfig
from scaling_lab.data.corpus import CORPUS_ID, build_corpus
from scaling_lab.data.sources import load_source
from scaling_lab.data.tokenizer import make_tokenizer
from scaling_lab.errors import exit_on_user_error


def embedded_config(args: argparse.Namespace) -> dict:
    tokenizer = {"kind": args.tokenizer} | ({"vocab_size": args.vocab_size} if args.tokenizer == "bpe" else {})
    return {
        "name": "embedded",
        "sources": [
            {"name": "prose", "kind": "embedded", "domain": "prose", "weight": 0.5},
            {"name": "code", "kind": "embedded", "domain": "code", "weight": 0.5},
        ],
        "tokenizer": tokenizer,
        "sequence_length": args.sequence_length,
        "seed": 0,
    }


def tiny_llama(vocab_size: int, context: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=86,  # ≈ 8/3 · hidden, the SwiGLU ratio of LLaMA (Touvron et al. 2023, §2)
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=context,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def repeated_corpus(corpus: pathlib.Path, path: pathlib.Path, megabytes: float) -> int:
    """Write the embedded corpus's documents, repeated, as one jsonl file of at least `megabytes` MB of text; return
    the bytes of text written."""
    documents = [json.loads(line)["text"] for name in ("prose", "code")
                 for line in (corpus / f"{name}.jsonl").read_text().splitlines()]  # fmt: skip
    written = 0
    with open(path, "w") as handle:
        while written < megabytes * 1e6:
            for text in documents:
                handle.write(json.dumps({"text": text}) + "\n")
                written += len(text.encode("utf-8"))
    return written


def bench_scale(args: argparse.Namespace, corpus: pathlib.Path) -> None:
    """Part 4: the cache build's MB/s by worker processes, and against `tokenizers`' encode_batch."""
    with tempfile.TemporaryDirectory(prefix="bench_data_scale-") as tmp:
        root = pathlib.Path(tmp)
        started = time.perf_counter()
        text_bytes = repeated_corpus(corpus, root / "corpus.jsonl", args.scale_mb)
        source = load_source(SourceConfig(name="repeated", kind="files", paths=[str(root / "corpus.jsonl")]), root)
        print(f"corpus: {text_bytes / 1e6:,.0f} MB of text in {source.document_count():,} documents, written and "
              f"read into Arrow by `datasets` in {time.perf_counter() - started:.1f} s (once, not counted below)"
              )  # fmt: skip
        config = TokenizerConfig(kind=args.tokenizer, vocab_size=args.vocab_size if args.tokenizer == "bpe" else None)
        started = time.perf_counter()
        tokenizer = make_tokenizer(config, training_texts=lambda: bpe_training_sample([source]),
                                   corpus_key=source.fingerprint, cache_dir=root)  # fmt: skip
        print(f"tokenizer: {tokenizer.name} ({time.perf_counter() - started:.1f} s to make)")
        started = time.perf_counter()
        for _ in source.documents():  # warm the page cache, so that no worker count pays for the first read
            pass
        print(f"reading the documents alone (one process): {text_bytes / 1e6 / (time.perf_counter() - started):.1f} "
              "MB/s")  # fmt: skip
        speeds = {}
        for workers in range(1, usable_cores() + 1):
            cache_dir = root / f"cache-{workers}"
            started = time.perf_counter()
            cached = cached_tokens(source, tokenizer, cache_dir, workers=workers, shard_documents=args.shard_documents)
            seconds = time.perf_counter() - started
            speeds[workers] = cached.text_bytes / seconds / 1e6
            print(f"  {workers} worker(s): {seconds:.1f} s, {speeds[workers]:.1f} MB/s, "
                  f"{speeds[workers] / workers:.1f} MB/s per core, speed-up {speeds[workers] / speeds[1]:.2f}x  "
                  "[target >= 1.8x at 2]")  # fmt: skip
            del cached
            shutil.rmtree(cache_dir)
        if args.tokenizer != "bpe":
            return
        from tokenizers import Tokenizer as FastTokenizer

        (saved,) = (root / "tokenizers").glob("bpe-*.json")
        backend, encode_s = FastTokenizer.from_file(str(saved)), 0.0
        for texts in source.documents(4096):
            started = time.perf_counter()
            backend.encode_batch(texts)
            encode_s += time.perf_counter() - started
        library = text_bytes / encode_s / 1e6
        best = max(speeds, key=speeds.get)
        print(f"tokenizers encode_batch ({usable_cores()} cores, encode calls only): {library:.1f} MB/s; our whole "
              f"build with {best} workers: {speeds[best]:.1f} MB/s = {speeds[best] / library:.2f}x of it  "
              "[target >= 0.8x]")  # fmt: skip


@exit_on_user_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", choices=["byte", "bpe"], default="byte")
    parser.add_argument("--vocab-size", type=int, default=4096, help="bpe only")
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--batch-sequences", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the step (the loader uses one)")
    parser.add_argument("--train-steps", type=int, default=300, help="steps before measuring the eval SE")
    parser.add_argument("--scale-mb", type=float, default=None, help="only part 4, on a corpus of this many MB")
    parser.add_argument("--shard-documents", type=int, default=SHARD_DOCUMENTS, help="part 4: documents per shard")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    corpus = build_corpus(default_cache_dir())
    if args.scale_mb is not None:
        bench_scale(args, corpus)
        return
    with tempfile.TemporaryDirectory(prefix="bench_data-") as tmp:
        cache_dir = pathlib.Path(tmp)
        shutil.copytree(corpus, cache_dir / "corpus" / CORPUS_ID)
        config = data_config_from_dict(embedded_config(args))
        started = time.perf_counter()
        data = prepare_data(config, cache_dir)
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        prepare_data(config, cache_dir)
        reuse_s = time.perf_counter() - started
        described = data.describe()
        tokens = sum(source["tokens"] for source in described["sources"].values())
        text_bytes = sum(source["text_bytes"] for source in described["sources"].values())
        print(f"cores: {usable_cores()}  tokenizer: {data.tokenizer_name}  vocab: {data.vocab_size}")
        for name, source in described["sources"].items():
            print(f"  {name}: {source['text_bytes']:,} bytes -> {source['tokens']:,} tokens")
        print(
            f"tokenize+cache from scratch: {build_s:.2f} s for {text_bytes / 1e6:.2f} MB -> {tokens:,} tokens "
            f"({tokens / build_s / 1e6:.2f} M tokens/s)  [target <= 30 s]  reuse: {reuse_s:.2f} s"
        )

        batch = args.batch_sequences
        steps = iter(range(123_456, 124_000))  # consecutive steps far into the stream, as a trainer takes them
        loader_s = median_seconds(lambda: data.train_sequences(next(steps) * batch, batch), repeats=300)

        model = tiny_llama(data.vocab_size, data.sequence_length)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        fixed = torch.from_numpy(data.train_sequences(0, batch))

        def train_step(sequences: torch.Tensor) -> float:
            # (B, L + 1) ids -> inputs (B, L), targets (B, L); transformers shifts labels itself, so pass ids twice
            loss = model(input_ids=sequences[:, :-1], labels=sequences[:, :-1]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return float(loss.detach())

        for _ in range(3):
            train_step(fixed)
        step_s = median_seconds(lambda: train_step(fixed), repeats=20)
        n_params = sum(p.numel() for p in model.parameters())
        print(
            f"loader: {loader_s * 1e3:.3f} ms per batch of {batch}x{data.sequence_length + 1}; "
            f"step (fwd+bwd+AdamW, {n_params:,} params, {args.threads} threads): {step_s * 1e3:.2f} ms; "
            f"loader/step = {loader_s / step_s:.2%}  [target <= 2 %]"
        )

        for step in range(args.train_steps):
            train_step(torch.from_numpy(data.train_sequences(step * batch, batch)))
        evaluation = torch.from_numpy(data.eval_sequences())
        model.eval()
        per_sequence = []
        with torch.no_grad():
            for chunk in evaluation.split(128):
                logits = model(input_ids=chunk[:, :-1]).logits
                losses = torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1), reduction="none"
                ).reshape(chunk.shape[0], -1)
                per_sequence.append(losses.mean(dim=1))
        sequence_losses = torch.cat(per_sequence).double().numpy()
        mean = sequence_losses.mean()
        standard_error = sequence_losses.std(ddof=1) / np.sqrt(len(sequence_losses))
        print(
            f"eval set: {len(sequence_losses)} sequences x {data.sequence_length} tokens; after {args.train_steps} "
            f"steps mean loss {mean:.3f} nats/token, SE {standard_error:.4f} = {standard_error / mean:.2%} of the loss "
            "[target < 0.5 %]"
        )


if __name__ == "__main__":
    main()
