"""The stability watch on a GPU (issue 23): a GPT-2-small-sized model, randomly initialised, in
bfloat16 autocast, trained for a few hundred steps plain and watched.

Prints (1) the watched loop's time against the plain loop's (pairs run back to back, the watched
one first in every other pair; the median of the pairs' ratios); (2) the host syncs of every
iteration, counted with ``torch.cuda.set_sync_debug_mode("warn")`` (each op that waits for the
device warns), split into the iterations the watch probed and the others (the claim: 0 on
every iteration without a probe; the plain loop's own count beside it); (3) the report.

The model is Hugging Face's ``GPT2LMHeadModel`` built from a ``GPT2Config`` of GPT-2 small's
shape (12 layers, width 768, 12 heads, vocabulary 50257, 124M parameters; nothing downloaded,
``transformers`` needed) or, without transformers, the catalog's own decoder at that width.
The data: sequences of a random bigram language over the full vocabulary (3 successors a
token). nanoGPT's recipe: AdamW (lr 6e-4, betas (0.9, 0.95), weight decay 0.1), 50 warmup
steps, clipping at 1.

Not run by ``make bench`` (no ``bench_`` prefix): it needs a CUDA device and exits at once
without one. Run: ``python benchmarks/gpu_stability_check.py [--steps 300] [--batch 8]
[--length 512] [--pairs 2]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

import nndoctor

VOCAB = 50257


def bigram_tokens(rng: np.random.Generator, n: int, length: int, vocab: int) -> np.ndarray:
    """``(n, length)`` token ids of a random sparse bigram language (each token has 3
    successors, drawn with replacement: the catalog's ``bigram_sequences`` draws them without,
    which over 50257 tokens takes minutes)."""
    succ = rng.integers(0, vocab, (vocab, 3))
    seq = np.zeros((n, length), dtype=np.int64)
    seq[:, 0] = rng.integers(0, vocab, n)
    for t in range(1, length):
        seq[:, t] = succ[seq[:, t - 1], rng.integers(0, 3, n)]
    return seq


def build(length: int) -> torch.nn.Module:
    torch.manual_seed(0)
    try:
        import transformers
    except ImportError:
        from nndoctor.scenarios._torch_lm_modules import GPT

        return GPT(VOCAB, length, 768, 12, 12)
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=length, n_embd=768, n_layer=12, n_head=12,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    return transformers.GPT2LMHeadModel(config)


def logits_of(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    out = model(ids)
    return getattr(out, "logits", out)  # (batch, time, vocab)


def train(args: argparse.Namespace, data: torch.Tensor, watched: bool) -> dict:
    """One run; its seconds (synchronised at the end only), per-iteration host syncs and, when
    watched, the watch."""
    model = build(args.length).cuda()
    opt = torch.optim.AdamW(
        model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True
    )
    watch = nndoctor.watch(model, opt, alerts=False) if watched else None
    syncs: list[int] = []
    torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(args.steps):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            for g in opt.param_groups:
                g["lr"] = 6e-4 * min(1.0, (step + 1) / 50)
            lo = (step * args.batch) % (len(data) - args.batch)
            ids = data[lo : lo + args.batch]
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = logits_of(model, ids[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            torch.cuda.set_sync_debug_mode("default")
        syncs.append(sum("synchroniz" in str(w.message) for w in caught))
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if watch is not None:
        watch.close()
    return {"seconds": seconds, "syncs": syncs, "watch": watch}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing run (this check needs a GPU)")
        return 0
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    rng = np.random.default_rng(0)
    data = torch.as_tensor(bigram_tokens(rng, 64 * args.batch, args.length + 1, VOCAB)).cuda()
    train(args, data, watched=False)  # warm-up: kernels, allocator, cuBLAS
    plain, watched, last = [], [], None
    for k in range(args.pairs):
        for w in (False, True) if k % 2 == 0 else (True, False):
            run = train(args, data, watched=w)
            (watched if w else plain).append(run)
            if w:
                last = run
    ratios = [b["seconds"] / a["seconds"] for a, b in zip(plain, watched, strict=True)]
    print(
        f"{args.steps} steps, batch {args.batch} x {args.length} tokens: plain "
        f"{statistics.median(r['seconds'] for r in plain):.2f} s, watched "
        f"{statistics.median(r['seconds'] for r in watched):.2f} s, ratio (median of pairs) "
        f"{statistics.median(ratios):.3f}"
    )
    assert last is not None
    watch = last["watch"]
    probes = watch.probes()
    # the iterations a probe read or finished: each probe step (the watch counts optimizer
    # steps; this loop steps every iteration)
    probed = {int(s) for s in probes.steps} | {int(s) for s in probes.stability.steps}
    syncs = last["syncs"]
    outside = {i: n for i, n in enumerate(syncs) if i not in probed and n}
    print(
        f"host syncs: {sum(syncs[i] for i in probed if i < len(syncs))} on the "
        f"{len(probed)} probed iterations; {sum(outside.values())} on the "
        f"{len(syncs) - len(probed)} others"
        + (f" (at iterations {sorted(outside)[:10]})" if outside else "")
        + f"; the plain loop: {sum(plain[-1]['syncs'])} in all"
    )
    print(watch.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
