"""Speed and memory benchmark for ``family-link check`` (issue 7). Prints figures; asserts
nothing (targets are judged by a person reading them, not by a timed test).

For each size it generates a synthetic practice (about 5 coded events per patient; cached
in --cache), then, each in a fresh process:
- reads the same CSV files with pandas' pyarrow engine and nothing else (the floor),
- runs ``family-link check`` on them, measuring wall seconds, peak resident memory and CPU
  seconds (user plus system, all threads: on 2 cores, a CPU time near twice the wall time
  means the check is limited by the processors, not by waiting).
It also times ``family-link --help`` (start-up).

    .venv/bin/python benchmarks/run.py                       # 10k, 100k, 1M patients
    .venv/bin/python benchmarks/run.py --sizes 10000 100000  # quicker
    .venv/bin/python benchmarks/run.py --jobs 1 2            # each size with --jobs 1 and 2
    .venv/bin/python benchmarks/run.py --repeat 5            # checks: medians of 5 runs (default 3)
    .venv/bin/python benchmarks/run.py --sizes 3000000       # one ICB-scale export (8 GB peak)

Each check time is the median of --repeat runs in fresh processes (the range follows it;
peak memory is the largest of them). The bare read, the floor the ratio is taken against,
is the fastest of at least 5 runs: on the benchmark VM a bare read of the 1M files took
either about 0.85 s or 1.4-1.8 s (a second more in the kernel), so a median could land on
either.

With several --jobs values it also checks that their reports are byte-identical (every file
but timings.json) and says so. Each run's stage times (from its timings.json) are printed
under it.

Targets (2 cores, 24 GB): 1M patients at most 60 s and 4 GB; at most 3x the bare read at
1M; 10x the patients at most 12x the time (100k -> 1M); 10k under 3 s; --help under 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FAMILY_LINK = str(BIN / "family-link")
AS_OF = "2026-11-01"

BARE_READ = """
import sys, pandas as pd
for name in ("patients.csv", "events.csv", "relationships.csv"):
    pd.read_csv(sys.argv[1] + "/" + name, engine="pyarrow", dtype=str)
"""


def timed(cmd: list[str]) -> tuple[float, float, int, float]:
    """Run ``cmd`` as a child; return (wall seconds, peak RSS in MB, exit code, CPU seconds:
    user plus system, over all its threads)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.read().decode(errors="replace")[-2000:])
    return wall, usage.ru_maxrss / 1024, proc.returncode, usage.ru_utime + usage.ru_stime


def practice(size: int, cache: Path) -> Path:
    folder = cache / f"practice-{size}"
    if not (folder / "events.csv").exists():
        print(f"generating {size:,} patients ...", flush=True)
        subprocess.run([FAMILY_LINK, "generate", str(folder), "--patients", str(size), "--seed", "7",
                        "--as-of", AS_OF], check=True, stdout=subprocess.DEVNULL)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "family_link_bench")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1],
                        help="run check with each of these --jobs values (default: 1)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each check, whose median is reported (default: 3; the bare read runs at least 5 times, its fastest reported)")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}")
    helps = [timed([FAMILY_LINK, "--help"])[0] for _ in range(5)]
    print(f"family-link --help: {statistics.median(helps):.2f} s (median of 5)")

    rows = []
    for size in args.sizes:
        folder = practice(size, args.cache)
        events = sum(1 for _ in open(folder / "events.csv", "rb")) - 1
        # The floor is the fastest bare read: on the benchmark VM its times fall in two groups
        # (about 0.85 s and 1.4-1.8 s at 1M, the slow ones spending a second more in the
        # kernel), so a median of a few could land on either.
        bares = [timed([sys.executable, "-c", BARE_READ, str(folder)])[0] for _ in range(max(5, args.repeat))]
        bare = min(bares)
        print(f"{size:>9,} patients {events:>10,} events: bare pyarrow read {bare:5.2f} s, the fastest of "
              f"{len(bares)} {_spread(bares)} (fresh process, imports included)", flush=True)
        reports = {}
        work = Path(tempfile.mkdtemp(prefix="fl-bench-"))
        for jobs in args.jobs:
            out = work / f"report-jobs{jobs}"
            cmd = [FAMILY_LINK, "check", str(folder), "--out", str(out), "--as-of", AS_OF, "--jobs", str(jobs)]
            runs = []
            for _ in range(args.repeat):
                shutil.rmtree(out, ignore_errors=True)  # each run writes a new report
                runs.append(timed(cmd))
            code = max(r[2] for r in runs)
            wall, peak_mb = statistics.median(r[0] for r in runs), max(r[1] for r in runs)
            cpu = statistics.median(r[3] for r in runs)
            rows.append((size, jobs, wall, peak_mb, bare, code))
            print(f"    --jobs {jobs}: check {wall:6.2f} s {_spread([r[0] for r in runs])}, peak "
                  f"{peak_mb:7.0f} MB, ratio to bare read {wall / bare:5.1f}x, exit {code}", flush=True)
            # CPU beside wall: when it nears wall x cores the machine, not waiting, is the limit.
            print(f"        CPU (user + system, all threads): {cpu:.2f} s, {cpu / wall:.1f} cores busy "
                  f"on average", flush=True)
            if code == 0:
                stages = json.loads((out / "timings.json").read_text())["seconds"]
                print("        stages: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()), flush=True)
                reports[jobs] = out
        if len(reports) > 1:
            same = _same_reports(list(reports.values()))
            print(f"    reports with --jobs {', '.join(map(str, reports))}: "
                  f"{'byte-identical' if same else 'DIFFERENT'}", flush=True)
        shutil.rmtree(work, ignore_errors=True)

    for jobs in args.jobs:
        by_size = {r[0]: r for r in rows if r[1] == jobs}
        if 100_000 in by_size and 1_000_000 in by_size:
            growth = by_size[1_000_000][2] / by_size[100_000][2]
            print(f"scaling 100k -> 1M with --jobs {jobs}: {growth:.1f}x the time for 10x the patients "
                  f"(target <= 12x)")


def _spread(values: list[float]) -> str:
    """The range of several timings, e.g. "(6.1-6.4)"; "" for one."""
    return f"({min(values):.2f}-{max(values):.2f})" if len(values) > 1 else ""


def _same_reports(folders: list[Path]) -> bool:
    """Every report file but timings.json byte-identical across ``folders``."""
    def files(folder: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != "timings.json"}
    first = files(folders[0])
    return all(files(f) == first for f in folders[1:])


if __name__ == "__main__":
    main()
