"""Embedding throughput of one worker process: images/s, one at a time and batched, for fp32 and
the speed options of ``matching.embedder`` (int8 dynamic quantization, channels-last), with each
option's agreement with fp32.

Agreement, on the catalogue: the seed catalogue's implants (``implants.catalog``, one rendered
reference image each) are embedded in fp32, as stored; ``n`` other renders of the same implants
(other seeds) are the queries. For each option: the mean and minimum cosine between its vector and
the fp32 vector of the same query, and the share of queries whose top-3 implants (against the fp32
catalogue, as the search would do) equal fp32's top 3 (same implants, same order). The option may
become the default only when both are >= 0.99 with the trained weights (untrained weights here:
the same arithmetic, but say so next to the figures).

Throughput is measured one image at a time, at the worker's batch (``RAIOX_PROCESS_BATCH``: the
worker claims that many waiting submissions and embeds them in one forward pass) and at 32, with
the torch thread count printed (``RAIOX_TORCH_THREADS``; torch's default is one per core).

Usage: ``python -m bench.embedding [n]`` (default 64 images).
"""

from __future__ import annotations

import os
import time

import numpy as np

from bench.common import setup_django, table

BASELINE = "old system: 1 image per 20-40 s (0.025-0.05 images/s), CLIP loaded inside the request"
VARIANTS = {"fp32": {}, "fp32 channels-last": {"channels_last": True}, "int8": {"quantize": "int8"}}


def catalogue_items() -> list[dict]:
    from implants.catalog import CATALOG

    return [item for group in CATALOG.values() for item in group]


def images(n: int, prefix: str = "bench"):
    from implants.synthetic import Silhouette, render

    items = catalogue_items()
    return [render(Silhouette(**items[i % len(items)]["drawing"]), seed_name=f"{prefix}-{i}") for i in range(n)]


def batch_sizes() -> list[int]:
    """The batch the worker uses (``RAIOX_PROCESS_BATCH``: one forward pass per claimed batch) and 32."""
    from django.conf import settings

    return sorted({settings.RAIOX_PROCESS_BATCH, 32})


def throughput(embedder, pics, batches: list[int]) -> list[float]:
    """images/s: batch 1 (16 images), then each batch size over all the images."""
    embedder.embed_images(pics[:2])  # warm-up
    t = time.perf_counter()
    for img in pics[:16]:
        embedder.embed_images([img])
    rates = [16 / (time.perf_counter() - t)]
    for batch in batches:
        t = time.perf_counter()
        for i in range(0, len(pics), batch):
            embedder.embed_images(pics[i : i + batch])
        rates.append(len(pics) / (time.perf_counter() - t))
    return rates


def top3(queries: np.ndarray, catalogue: np.ndarray) -> np.ndarray:
    return np.argsort(-(queries @ catalogue.T), axis=1, kind="stable")[:, :3]


def main(n: int = 64) -> dict[str, object]:
    """Print the table; return the figures: ``variants`` (per variant: ``batch1`` and ``batch<B>``
    images/s, ``cos_mean``, ``cos_min``, ``top3``), ``worker_batch``, ``threads``, ``text``."""
    setup_django()
    import torch
    from django.conf import settings

    from matching.embedder import Embedder, pick_device, resolve_spec

    spec, device = resolve_spec(), pick_device()
    batches = batch_sizes()
    worker_batch = settings.RAIOX_PROCESS_BATCH
    pics = [img.convert("RGB") for img in images(n)]
    refs = [img.convert("RGB") for img in images(len(catalogue_items()), prefix="catalogue")]
    rows, vectors, catalogue, figures = [], {}, None, {}
    threads = None
    for name, options in VARIANTS.items():
        if options.get("quantize") and device != "cpu":
            continue
        started = time.perf_counter()
        embedder = Embedder(spec, device, **options)
        build = time.perf_counter() - started
        threads = torch.get_num_threads()  # after the build: RAIOX_TORCH_THREADS is applied there
        rates = throughput(embedder, pics, batches)
        vectors[name] = np.asarray(embedder.embed_images(pics), dtype=np.float64)
        if catalogue is None:  # fp32 first: the catalogue as stored
            catalogue = np.asarray(embedder.embed_images(refs), dtype=np.float64)
        cos = np.sum(vectors[name] * vectors["fp32"], axis=1)
        same = float(np.mean(np.all(top3(vectors[name], catalogue) == top3(vectors["fp32"], catalogue), axis=1)))
        by_batch = dict(zip(batches, rates[1:], strict=True))
        figures[name] = {
            "batch1": rates[0],
            **{f"batch{b}": r for b, r in by_batch.items()},
            "cos_mean": float(cos.mean()),
            "cos_min": float(cos.min()),
            "top3": same,
            "build_s": build,
        }
        rows.append(
            [
                name,
                *(f"{r:.1f}" for r in rates),
                f"{1000 / by_batch[worker_batch]:.0f} ms",
                f"{cos.mean():.4f} / {cos.min():.4f}",
                f"{same:.3f}",
                f"{build:.1f} s",
            ]
        )
        print(rows[-1], flush=True)
    title = (
        f"Embedding throughput — {spec.model_id} on {device}, torch threads={threads} "
        f"(RAIOX_TORCH_THREADS={settings.RAIOX_TORCH_THREADS or 'torch default'}, {os.cpu_count()} cores), "
        f"worker batch {worker_batch} (RAIOX_PROCESS_BATCH), {n} images, agreement over {len(refs)} catalogue "
        "implants (target >= 20 images/s batched with cosine >= 0.99 of fp32)"
    )
    print(BASELINE)
    text = table(
        title,
        [
            "variant",
            "batch 1 img/s",
            *(f"batch {b} img/s" + (" (worker)" if b == worker_batch else "") for b in batches),
            f"per image at {worker_batch}",
            "cosine with fp32 mean / min",
            "same top-3 as fp32",
            "build",
        ],
        rows,
    )
    return {
        "variants": figures,
        "worker_batch": worker_batch,
        "threads": threads,
        "device": device,
        "model": spec.model_id,
        "text": text,
    }


if __name__ == "__main__":
    import sys

    main(int(sys.argv[1]) if len(sys.argv) > 1 else 64)
