"""The web process's header-only check (``kernel.imaging.inspect_image``) on issue 22's crafted
structures, before and after the bounded walk: ``python -m bench.crafted [--before]``.

For each file (``testkit.crafted``): its size, the refusal's code, the wall time and CPU time of the
check, and the peak of memory it allocated (``tracemalloc``: Python's allocations, Pillow's and
pydicom's objects included; libjpeg's own buffers are not seen). ``--before`` also runs each one
with the walk switched off (``kernel.imaging._walk_structure`` replaced by nothing), which is the
check as it was: the readers alone, on the same bytes. Each file runs in a fresh child process so
that one case's memory does not hide the next one's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc

from bench.common import setup_django, table


def _one(name: str, before: bool) -> dict:
    setup_django()
    from kernel import imaging
    from testkit.crafted import CRAFTED_STRUCTURES

    data = CRAFTED_STRUCTURES[name][0]()
    if before:
        imaging._walk_structure = lambda data, field: None
    tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        imaging.inspect_image(data)
        code = "accepted"
    except imaging.InvalidImage as exc:
        code = exc.code
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1]
    return {"bytes": len(data), "code": code, "wall": wall, "cpu": cpu, "peak": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", action="store_true", help="also run each file without the walk")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_one(args.child[0], args.child[1] == "before")))
        return
    setup_django()
    from testkit.crafted import CRAFTED_STRUCTURES

    rows = []
    for name in CRAFTED_STRUCTURES:
        for mode in ("before", "after") if args.before else ("after",):
            out = subprocess.run(
                [sys.executable, "-m", "bench.crafted", "--child", name, mode],
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(
                [
                    name,
                    mode,
                    f"{r['bytes'] / 1e6:.2f}",
                    r["code"],
                    f"{r['wall'] * 1000:.1f}",
                    f"{r['cpu'] * 1000:.1f}",
                    f"{r['peak'] / 1e6:.1f}",
                ]
            )
    table(
        "inspect_image on crafted structures", ["file", "check", "MB", "answer", "wall ms", "CPU ms", "peak MB"], rows
    )


if __name__ == "__main__":
    main()
