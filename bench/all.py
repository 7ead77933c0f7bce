"""`make bench`: every benchmark, one after the other, each printing its table."""

from __future__ import annotations

from bench import e2e, embedding, intake, search


def main() -> None:
    embedding.main()
    search.main()
    e2e.main()
    intake.main([])  # last and longest: load levels, the exactly-once burst and the queue drain


if __name__ == "__main__":
    main()
