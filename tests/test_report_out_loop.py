"""--out through a symbolic link loop is exit 5 naming the folder, not a traceback."""

from __future__ import annotations

import pytest

from golden_files import MONTH_1, generate, run


@pytest.mark.parametrize("command", ["check", "batch"])
@pytest.mark.parametrize("under", ["", "sub"])
def test_out_through_a_symlink_loop_is_exit_5(tmp_path, command, under):
    generate(tmp_path / "exports" / "M91001", seed=21, patients=40)
    (tmp_path / "loop").symlink_to("loop")
    out = tmp_path / "loop" / under if under else tmp_path / "loop"
    source = tmp_path / "exports" / ("M91001" if command == "check" else "")
    result = run(command, source, "--out", out, "--as-of", MONTH_1, *(["--quiet"] if command == "batch" else []))
    assert result.exit_code == 5, result.output
    assert "Traceback" not in result.output
    assert f"{out}: is, or lies under, a symbolic link that leads back to itself" in result.output
    assert "HINT" in result.output
