"""How fast ``family-link check`` could be if linking households cost nothing: the floor
that the rest of the check (start-up, reading and validating every row, the rules, the
report's eleven files) sets on its own, against the 3x-the-bare-read target (issue 7).
Prints figures; asserts nothing.

For each size it links the practice's households once, untimed, and keeps them in an
Arrow file. Then, each in a fresh process, it runs the real ``check`` command with its
``link_households`` replaced by reading that file (memory-mapped: a few milliseconds), and
the real ``check`` beside it, alternating, and prints both with the bare pyarrow read of
benchmarks/run.py. The two reports are compared byte for byte (but timings.json), so the
stand-in is known to have changed nothing but the linkage's cost.

    .venv/bin/python benchmarks/without_linkage.py                  # 1M patients
    .venv/bin/python benchmarks/without_linkage.py --sizes 100000   # quicker

The practices are generated and cached as benchmarks/run.py does (same --cache). Synthetic
data only: the households file lives in a temporary folder removed at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import AS_OF, BARE_READ, FAMILY_LINK, _same_reports, _spread, practice, timed  # noqa: E402

LINK_ONCE = """
import sys
from datetime import date
from family_link._process import command_line_settings
command_line_settings()
import pyarrow as pa, pyarrow.feather as feather
from family_link.households import link_households
from family_link.layouts import load_any_export
export = load_any_export(sys.argv[1], date.fromisoformat(sys.argv[3]))
households = link_households(export.patients, export.relationships, date.fromisoformat(sys.argv[3]))
feather.write_feather(pa.Table.from_pandas(households, preserve_index=False), sys.argv[2],
                      compression="uncompressed")
"""

# The real command line, but link_households reads the households linked above.
CHECK_WITHOUT_LINKAGE = """
import sys
households_file = sys.argv.pop(1)
import family_link.check

def linked_already(patients, relationships, as_of, jobs=1):
    import pyarrow.feather as feather
    return feather.read_table(households_file, memory_map=True).to_pandas()

family_link.check.link_households = linked_already
from family_link.cli import main
sys.argv[0] = "family-link"
main()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "family_link_bench")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each check (default: 5)")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        folder = practice(size, args.cache)
        work = Path(tempfile.mkdtemp(prefix="fl-bench-nolink-"))
        try:
            households_file = work / "households.arrow"
            _, _, code, _ = timed([sys.executable, "-c", LINK_ONCE, str(folder), str(households_file), AS_OF])
            if code:
                raise SystemExit(f"linking the {size:,}-patient practice failed (exit {code})")
            bare = min(timed([sys.executable, "-c", BARE_READ, str(folder)])[0] for _ in range(5))
            check_args = ["check", str(folder), "--as-of", AS_OF, "--force", "--out"]
            commands = {
                "check": lambda out: [FAMILY_LINK, *check_args, str(out)],
                "check, linkage free": lambda out: [sys.executable, "-c", CHECK_WITHOUT_LINKAGE,
                                                    str(households_file), *check_args, str(out)],
            }
            runs: dict[str, list] = {name: [] for name in commands}
            for _ in range(args.repeat):  # alternating, so both see the machine in the same states
                for name, command in commands.items():
                    runs[name].append(timed(command(work / name.replace(" ", "_").replace(",", ""))))
            print(f"{size:,} patients: bare pyarrow read {bare:.2f} s (the fastest of 5); 3x is {3 * bare:.2f} s")
            for name, results in runs.items():
                walls = [r[0] for r in results]
                wall = statistics.median(walls)
                out = work / name.replace(" ", "_").replace(",", "")
                stages = json.loads((out / "timings.json").read_text())["seconds"]
                print(f"    {name:20s} {wall:5.2f} s {_spread(walls)}, {wall / bare:4.1f}x the bare read, "
                      f"CPU {statistics.median(r[3] for r in results):.1f} s, peak {max(r[1] for r in results):.0f} MB, "
                      f"exit {max(r[2] for r in results)}")
                print("        stages: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
            same = _same_reports([work / "check", work / "check_linkage_free"])
            print(f"    reports: {'byte-identical' if same else 'DIFFERENT'}")
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
