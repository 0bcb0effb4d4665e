"""How fast ``family-link check`` could be if linking households cost nothing: the floor
that the rest of the check (start-up, reading and validating every row, the rules, the
report's eleven files) sets on its own, against the 3x-the-bare-read target (issue 7).
Prints figures; asserts nothing.

For each size it links the practice's households once, untimed, and keeps them in an
Arrow file. Then, each in a fresh process and alternating, it runs:
- ``check``: the real command;
- ``check via the harness``: the real command started through this script's harness, with
  the real linkage (what the harness itself costs: it should match ``check``);
- ``check, linkage free``: the same harness with ``link_households`` replaced by reading
  that file (memory-mapped: a few milliseconds), put in as the command line imports it,
  after its process settings and with the read-ahead under way, as in the real command;
and prints them with the bare pyarrow read of benchmarks/run.py. The three reports are
compared byte for byte (but timings.json): the stand-in changes what the linkage costs,
not what the check writes.

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

# The real command line, with check's link_households replaced (argv[1] the households
# file, or "-" to keep the real linkage: the harness's own cost). The replacement is made
# as family_link.check loads, which the command line does late, after its process settings
# (allocator, threads) and with the export already being read ahead: importing check
# first to patch it would lose both and make the check slower, not only the linkage free.
CHECK_THROUGH_HARNESS = """
import importlib.abc, importlib.util, sys
households_file = sys.argv.pop(1)

def linked_already(patients, relationships, as_of, jobs=1):
    import pyarrow.feather as feather
    return feather.read_table(households_file, memory_map=True).to_pandas()

class ReplaceTheLinkage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "family_link.check":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            module.link_households = linked_already

        spec.loader.exec_module = exec_module
        return spec

if households_file != "-":
    sys.meta_path.insert(0, ReplaceTheLinkage())
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
                "check via the harness": lambda out: [sys.executable, "-c", CHECK_THROUGH_HARNESS, "-",
                                                      *check_args, str(out)],
                "check, linkage free": lambda out: [sys.executable, "-c", CHECK_THROUGH_HARNESS,
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
                print(f"    {name:22s} {wall:5.2f} s {_spread(walls)}, {wall / bare:4.1f}x the bare read, "
                      f"CPU {statistics.median(r[3] for r in results):.1f} s, peak {max(r[1] for r in results):.0f} MB, "
                      f"exit {max(r[2] for r in results)}")
                print("        stages: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
            same = _same_reports([work / "check", work / "check_via_the_harness", work / "check_linkage_free"])
            print(f"    reports: {'byte-identical' if same else 'DIFFERENT'}")
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
