"""Concurrent decodes bounded by memory (issue 22): the worker's prepare threads decode a batch at
once, and each decode holds its header's estimate (width x height x bands) of
``RAIOX_WORKER_DECODE_MEMORY_MB`` while it runs. Two films larger than half the budget never
decode together; small ones do; a film larger than the whole budget still decodes, alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from kernel import imaging
from testkit.images import plain_image


@pytest.fixture
def recorded(monkeypatch):
    """The full decode replaced by one that records how many run at once; ``meet`` makes each
    wait (bounded) for a second one to be inside with it, so an overlap that is allowed happens."""
    state = {"now": 0, "most": 0, "meet": None}
    lock = threading.Lock()
    real = imaging._decode

    def decode(data, header, field):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            if state["meet"] is not None:
                try:
                    state["meet"].wait()
                except threading.BrokenBarrierError:
                    pass  # alone: the budget kept the other one out
            return real(data, header, field)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(imaging, "_decode", decode)
    return state


def _decode_together(files: list[bytes]) -> list[imaging.ValidatedImage]:
    with ThreadPoolExecutor(max_workers=len(files)) as pool:
        return list(pool.map(imaging.decode_image, files))


def test_two_films_larger_than_half_the_budget_never_decode_together(settings, recorded):
    film = plain_image((1500, 1500), 90)  # 1500 x 1500 x 1 band: ~2.1 MB decoded
    settings.RAIOX_WORKER_DECODE_MEMORY_MB = 3
    recorded["meet"] = threading.Barrier(2, timeout=1)
    results = _decode_together([film, film, film])
    assert [(r.width, r.height) for r in results] == [(1500, 1500)] * 3
    assert recorded["most"] == 1


def test_films_within_the_budget_decode_side_by_side(settings, recorded):
    film = plain_image((1500, 1500), 90)
    settings.RAIOX_WORKER_DECODE_MEMORY_MB = 64
    recorded["meet"] = threading.Barrier(2, timeout=30)
    _decode_together([film, film])
    assert recorded["most"] == 2


def test_small_films_decode_side_by_side_under_a_small_budget(settings, recorded):
    small = plain_image((300, 300), 90)  # ~90 kB decoded
    settings.RAIOX_WORKER_DECODE_MEMORY_MB = 3
    recorded["meet"] = threading.Barrier(2, timeout=30)
    _decode_together([small, small])
    assert recorded["most"] == 2


def test_a_film_larger_than_the_whole_budget_decodes_alone(settings, recorded):
    film = plain_image((1500, 1500), 90)
    settings.RAIOX_WORKER_DECODE_MEMORY_MB = 1
    recorded["meet"] = threading.Barrier(2, timeout=1)
    results = _decode_together([film, plain_image((300, 300), 90)])
    assert [r.width for r in results] == [1500, 300]
    assert recorded["most"] == 1


def test_the_estimate_counts_bands():
    grey = imaging.inspect_image(plain_image((400, 400), 90))
    colour = imaging.inspect_image(plain_image((400, 400), (90, 90, 90), mode="RGB"))
    assert grey.decoded_bytes == 400 * 400
    assert colour.decoded_bytes == 3 * 400 * 400
