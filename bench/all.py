"""`make bench`: every benchmark, one after the other, each printing its table."""

from __future__ import annotations

import time

from bench import e2e, embedding, search


def main() -> None:
    started = time.perf_counter()
    embedding.main()
    search.main()
    e2e.main()
    print(f"\nAll benchmarks in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
