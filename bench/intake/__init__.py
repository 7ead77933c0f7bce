"""Intake under load (issue 8): see ``bench.intake.run``; ``python -m bench.intake``."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> dict[str, object]:
    from bench.intake.run import main as run

    return run(argv)
