"""Regenerate the parts of the docs that come from the code, so they cannot drift:
docs/cli.md (every command's --help) and the header table in docs/export-format.md.

    python scripts/gen_docs.py          # rewrite
    python scripts/gen_docs.py --check  # exit 1 if a doc is out of date (run by the tests)
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.testing import CliRunner

from family_link._export import COLUMN_SYNONYMS, REQUIRED
from family_link.cli import main

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- BEGIN GENERATED: headers -->", "<!-- END GENERATED: headers -->"


def _commands(group: click.Group, prefix: list[str]) -> list[list[str]]:
    out = [prefix]
    for name in sorted(group.commands):
        cmd = group.commands[name]
        if isinstance(cmd, click.Group):
            out += _commands(cmd, prefix + [name])
        else:
            out.append(prefix + [name])
    return out


def cli_reference() -> str:
    parts = ["# Command-line reference\n",
             "Generated from `--help` by `scripts/gen_docs.py`; a test fails when it is out of date.\n"]
    for path in _commands(main, []):
        result = CliRunner().invoke(main, path + ["--help"], prog_name="family-link", terminal_width=100)
        title = " ".join(["family-link", *path])
        parts.append(f"## `{title}`\n\n```\n{result.output.rstrip()}\n```\n")
    return "\n".join(parts)


def header_table() -> str:
    lines = [BEGIN, "", "| file | column | required | accepted headers |", "|---|---|---|---|"]
    for file, spec in COLUMN_SYNONYMS.items():
        for canon, names in spec.items():
            req = "yes" if canon in REQUIRED[file] else ""
            lines.append(f"| {file} | `{canon}` | {req} | {', '.join(names)} |")
    lines += ["", END]
    return "\n".join(lines)


def render() -> dict[Path, str]:
    fmt = ROOT / "docs" / "export-format.md"
    text = fmt.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return {ROOT / "docs" / "cli.md": cli_reference(), fmt: head + header_table() + tail}


if __name__ == "__main__":
    stale = []
    for path, content in render().items():
        if "--check" in sys.argv:
            if not path.exists() or path.read_text() != content:
                stale.append(path)
        else:
            path.write_text(content)
    if stale:
        print("Out of date (run python scripts/gen_docs.py):", *stale)
        sys.exit(1)
