"""``raylight --help`` opens with what raylight is, not with a module docstring."""

from __future__ import annotations

import pytest

from raylight.core.cli import DESCRIPTION, build_parser


def test_help_opens_with_what_raylight_is(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    opening = out.split("\n\n")[1].strip()
    assert opening == DESCRIPTION and "``" not in out, out[:500]
    assert "raylight train configs/" in out
