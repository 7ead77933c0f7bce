"""A small asyncio + httpx load generator: ``concurrency`` clients, each posting its next body as soon
as the previous one is answered (closed loop, keep-alive connections), until ``total`` requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from bench.common import percentile


@dataclass
class Outcome:
    status: int  # 0: the request raised (connection refused/reset, timeout)
    latency_ms: float
    json: dict | None = None
    error: str = ""


@dataclass
class RunResult:
    concurrency: int
    seconds: float
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if 200 <= o.status < 300]

    @property
    def errors(self) -> int:
        return len(self.outcomes) - len(self.ok)

    @property
    def throughput(self) -> float:
        return len(self.ok) / self.seconds if self.seconds else 0.0

    def latency(self, p: float) -> float:
        return percentile([o.latency_ms for o in self.ok], p)

    def error_summary(self) -> str:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            if not 200 <= o.status < 300:
                key = o.error or f"HTTP {o.status}"
                counts[key] = counts.get(key, 0) + 1
        return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())) or "-"


Request = tuple[str, bytes, str]  # url, body, content type


async def _run(make: Callable[[int], Request], total: int, concurrency: int, timeout: float) -> RunResult:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    result = RunResult(concurrency=concurrency, seconds=0.0)
    counter = iter(range(total))

    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:

        async def one_client() -> None:
            for n in counter:  # shared iterator: each request number is taken once
                url, body, content_type = make(n)
                started = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers={"Content-Type": content_type})
                    elapsed = (time.perf_counter() - started) * 1000
                    try:
                        payload = response.json()
                    except ValueError:
                        payload = None
                    result.outcomes.append(Outcome(response.status_code, elapsed, payload))
                except httpx.HTTPError as exc:
                    elapsed = (time.perf_counter() - started) * 1000
                    result.outcomes.append(Outcome(0, elapsed, None, type(exc).__name__))

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result


def run(make: Callable[[int], Request], *, total: int, concurrency: int, timeout: float = 60.0) -> RunResult:
    return asyncio.run(_run(make, total, concurrency, timeout))


async def _burst(requests: list[Request], concurrency: int, timeout: float) -> list[Outcome]:
    """Every request in ``requests`` (in order, ``concurrency`` in flight), outcome at its index."""
    results: list[Outcome | None] = [None] * len(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    queue = iter(enumerate(requests))
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:

        async def worker() -> None:
            for i, (url, body, content_type) in queue:
                started = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers={"Content-Type": content_type})
                    try:
                        payload = response.json()
                    except ValueError:
                        payload = None
                    results[i] = Outcome(response.status_code, (time.perf_counter() - started) * 1000, payload)
                except httpx.HTTPError as exc:
                    results[i] = Outcome(0, (time.perf_counter() - started) * 1000, None, type(exc).__name__)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return [r for r in results if r is not None]


def burst(requests: list[Request], *, concurrency: int, timeout: float = 60.0) -> list[Outcome]:
    return asyncio.run(_burst(requests, concurrency, timeout))
