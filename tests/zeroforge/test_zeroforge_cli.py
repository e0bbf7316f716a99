"""The CLI a newcomer meets: where the home is, --home on either side of the command, --version, help on every option."""

import argparse
import subprocess
import sys

import pytest

from orchestration.instance import resolve_home
from zeroforge.cli import build_parser, main


def test_home_is_found_like_a_repository(tmp_path, monkeypatch):
    monkeypatch.delenv("ZEROFORGE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    checkout = tmp_path / "checkout"
    (checkout / ".zeroforge").mkdir(parents=True)
    (checkout / "sub" / "deeper").mkdir(parents=True)
    assert resolve_home(None, cwd=checkout / "sub" / "deeper") == (checkout / ".zeroforge", f"a .zeroforge/ folder in {checkout}")
    assert resolve_home(None, cwd=tmp_path)[1] == "the user default" and resolve_home(None, cwd=tmp_path)[0].name == ".zeroforge"
    monkeypatch.setenv("ZEROFORGE_HOME", str(tmp_path / "env"))
    assert resolve_home(None, cwd=checkout) == ((tmp_path / "env").resolve(), "$ZEROFORGE_HOME")
    assert resolve_home(str(tmp_path / "flag"), cwd=checkout) == ((tmp_path / "flag").resolve(), "--home")


@pytest.mark.parametrize("argv", [["--home", "H", "lineage", "x"], ["lineage", "x", "--home", "H"]])
def test_home_is_accepted_before_and_after_the_command(argv):
    assert build_parser().parse_args(argv).home == "H"


def test_lineage_says_which_home_it_used(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ZEROFORGE_HOME", raising=False)
    home = tmp_path / ".zeroforge"
    home.mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="no lineage record"):
        main(["lineage", "vzero/iter-0002"])
    assert f"zeroforge home: {home}" in capsys.readouterr().err


def test_every_command_and_option_has_help_and_there_is_a_version():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"demo", "ui", "eval", "build-model", "backfill", "lineage", "ui-snapshots"} <= set(sub.choices)
    assert all(c.help for c in sub._choices_actions)  # every command in `zeroforge --help`
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings} has no help"
                if action.default not in (None, False, argparse.SUPPRESS) and "default" not in action.help:
                    pytest.fail(f"{name} {action.option_strings}: its help does not say its default {action.default!r}")
    out = subprocess.run([sys.executable, "-m", "zeroforge.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("zeroforge ")
    assert "How answers are scored" in sub.choices["eval"].epilog  # how a custom benchmark is scored
