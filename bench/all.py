"""`make bench`: every benchmark, one after the other, each printing its table."""

from __future__ import annotations

from bench import embedding, intake, search


def main() -> None:
    embedding.main()
    search.main()
    intake.main([])  # last: it starts its own gunicorn, worker and file host
    # TODO(bench): end-to-end /upload p50/p95 over 50 X-rays with gunicorn + qcluster, and the RSS
    # of both processes (bench/e2e.py) — not written yet.


if __name__ == "__main__":
    main()
