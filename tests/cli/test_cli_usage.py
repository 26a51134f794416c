"""The `itdr` command line: help text for every option, one-line errors with exit 2 for user mistakes."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from azure.identity import CredentialUnavailableError

import shared.cli.scan
from shared.cli.main import build_parser, main


def _undocumented(parser: argparse.ArgumentParser, path: str) -> list[str]:
    out: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _undocumented(sub, f"{path} {name}")
        elif not action.help and not isinstance(action, argparse._HelpAction):
            out.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return out


def test_every_option_of_every_command_has_help_text() -> None:
    assert _undocumented(build_parser(), "itdr") == []


def test_a_missing_azure_login_is_a_one_line_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the command stands in for any that reaches Azure without a login; what is tested is how `itdr` reports it
    def needs_login(args: Any) -> int:
        raise CredentialUnavailableError(message="DefaultAzureCredential failed to retrieve a token.\nAttempted: ...")

    monkeypatch.setattr(shared.cli.scan, "run", needs_login)
    assert main(["scan", "whatever.json"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "itdr scan: not signed in to Azure: DefaultAzureCredential failed to retrieve a token. (run 'az login')\n"
    )


def test_a_wrong_path_is_a_one_line_usage_error(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err == f"itdr scan: no such file or directory: {tmp_path / 'missing.json'}\n"
