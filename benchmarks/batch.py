"""ICB-scale batch benchmark (issue 7): an area's practices checked by ``family-link batch``,
one at a time and with ``--jobs``. Prints figures; asserts nothing.

It generates --practices synthetic practices (cached in --cache; sizes 3,500 to 31,500
patients, as English practices run, each with its own seed), then runs ``family-link batch``
on the folder in a fresh process for each --jobs value, --repeat times, and prints the
median wall seconds (with the range), the largest process's peak memory and the CPU time,
and whether every file written (but timings.json) is byte-identical across the --jobs
values.

    .venv/bin/python benchmarks/batch.py                       # 24 practices, --jobs 1 and 2
    .venv/bin/python benchmarks/batch.py --practices 100 --jobs 1 2 4
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import AS_OF, FAMILY_LINK, _spread, timed  # noqa: E402  (the benchmark beside this one)


def practice_size(i: int) -> int:
    """Practice ``i``'s patients (1-based): 3,500 to 31,500 in steps of 3,500, mixed."""
    return (i * 7919 % 9 + 1) * 3500


def area(count: int, cache: Path) -> Path:
    """A folder of ``count`` practice exports, generated once."""
    folder = cache / f"area-{count}"
    for i in range(1, count + 1):
        export = folder / f"practice-{i:03d}"
        if not (export / "events.csv").exists():
            print(f"generating practice {i} of {count} ({practice_size(i):,} patients) ...", flush=True)
            subprocess.run([FAMILY_LINK, "generate", str(export), "--patients", str(practice_size(i)),
                            "--seed", str(100 + i), "--as-of", AS_OF], check=True, stdout=subprocess.DEVNULL)
    return folder


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "timings.json"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--practices", type=int, default=24)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "family_link_bench")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}")
    folder = area(args.practices, args.cache)
    patients = sum(practice_size(i) for i in range(1, args.practices + 1))
    print(f"{args.practices} practices, {patients:,} patients", flush=True)
    work = Path(tempfile.mkdtemp(prefix="fl-batch-bench-"))
    outs = {}
    for jobs in args.jobs:
        out = work / f"batch-jobs{jobs}"
        cmd = [FAMILY_LINK, "batch", str(folder), "--out", str(out), "--as-of", AS_OF, "--quiet",
               "--jobs", str(jobs)]
        runs = []
        for _ in range(args.repeat):
            shutil.rmtree(out, ignore_errors=True)
            runs.append(timed(cmd))
        wall = statistics.median(r[0] for r in runs)
        print(f"    --jobs {jobs}: batch {wall:6.2f} s {_spread([r[0] for r in runs])}, largest process's peak "
              f"{max(r[1] for r in runs):6.0f} MB, CPU {statistics.median(r[3] for r in runs):.2f} s, "
              f"exit {max(r[2] for r in runs)}", flush=True)
        outs[jobs] = out
    if len(outs) > 1:
        first, *rest = outs.values()
        same = all(files(o) == files(first) for o in rest)
        print(f"    files written with --jobs {', '.join(map(str, outs))}: {'byte-identical' if same else 'DIFFERENT'}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
