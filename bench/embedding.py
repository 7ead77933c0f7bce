"""Embedding throughput of one worker process: images/s, one at a time and batched."""

from __future__ import annotations

import time

from bench.common import setup_django, table

BASELINE = "old system: 1 image per 20-40 s (0.025-0.05 images/s), CLIP loaded inside the request"


def images(n: int):
    from implants.catalog import CATALOG
    from implants.synthetic import Silhouette, render

    items = [item for group in CATALOG.values() for item in group]
    return [render(Silhouette(**items[i % len(items)]["drawing"]), seed_name=f"bench-{i}") for i in range(n)]


def main(n: int = 64) -> str:
    setup_django()
    import torch

    from matching.embedder import get_embedder

    started = time.perf_counter()
    embedder = get_embedder()
    build = time.perf_counter() - started
    pics = [img.convert("RGB") for img in images(n)]
    embedder.embed_images(pics[:2])  # warm-up
    rows = []
    t = time.perf_counter()
    for img in pics[:16]:
        embedder.embed_images([img])
    single = 16 / (time.perf_counter() - t)
    rows.append(["single (batch 1)", f"{single:.1f}", f"{1000 / single:.0f} ms", "0.025-0.05"])
    for batch in (16, 32):
        t = time.perf_counter()
        for i in range(0, n, batch):
            embedder.embed_images(pics[i : i + batch])
        rate = n / (time.perf_counter() - t)
        rows.append([f"batched ({batch})", f"{rate:.1f}", f"{1000 / rate:.0f} ms", "0.025-0.05"])
    title = (
        f"Embedding throughput — {embedder.model_id} on {embedder.device}, torch threads={torch.get_num_threads()}, "
        f"model built in {build:.1f} s (target >= 14 images/s batched)"
    )
    print(BASELINE)
    return table(title, ["mode", "images/s", "per image", "baseline images/s"], rows)


if __name__ == "__main__":
    main()
