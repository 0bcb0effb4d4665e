"""Tests for read5's reader speed-ups: each against the plain implementation it replaces."""

from __future__ import annotations

import mmap

from hypothesis import given, settings
from hypothesis import strategies as st

from family_link._export import _is_utf8


def _decodes(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=6), st.text(max_size=4).map(lambda t: t.encode("utf-8", "surrogatepass"))),
                max_size=8))
def test_is_utf8_is_python_decoding(parts):
    raw = b"".join(parts)
    assert _is_utf8(raw) == _decodes(raw)


def test_is_utf8_rejects_what_python_rejects():
    for bad in (b"\xc0\x80", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80",
                b"abc\xc3", b"\xff", b"a\xe9b"):
        assert not _is_utf8(bad), bad
    for good in (b"", b"ascii", "é, 𝄞, \u00a0".encode()):
        assert _is_utf8(good)


def test_is_utf8_of_a_mapping_leaves_it_closable(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes("a,b\n1,é\n".encode() * 1000)
    with path.open("rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    assert _is_utf8(mapped)
    mapped.close()  # no view of it is left alive
