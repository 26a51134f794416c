"""shared.cli.terminal.safe, and the `itdr scan --format table` view and one-line errors with hostile text."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from shared.alert_model import Alert, Category, Severity
from shared.cli import main as cli_main
from shared.cli.scan import format_table
from shared.cli.terminal import safe
from shared.platform.errors import BadInputError, ConfigurationError

# Anything a terminal acts on: C0 but newline, DEL, C1, ESC, and the bidi controls.
UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

HOSTILE_UPN = "megan\x1b[2J\x1b[H@contoso.com"  # clear screen, cursor home
HOSTILE_RULE = "\x1b]0;pwned\x07.\x1b[8m"  # window title, then hidden text
HOSTILE_UA = "Mozilla/5.0\r\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\\u202eexe.pdf\x9b31m"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("megan@contoso.com", "megan@contoso.com"),
        ("\x1b[31mred\x1b[0m", "red"),  # CSI SGR
        ("a\x1b[2J\x1b[1;1Hb", "ab"),  # clear screen, cursor position
        ("a\x1b[?25lb", "ab"),  # private CSI (hide cursor)
        ("\x1b]0;title\x07text", "text"),  # OSC ended by BEL
        ("\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink, ST-terminated
        ("ok\x1b]52;c;ZXZpbA==", "ok"),  # unterminated OSC 52 (clipboard write) swallows the rest
        ("a\x1bPq#0;2;0;0;0\x1b\\b", "ab"),  # DCS (sixel)
        ("a\x9b31mb", "ab"),  # C1 CSI
        ("a\x9d0;t\x9cb", "ab"),  # C1 OSC ... C1 ST
        ("a\x1b(Bb\x1bcc", "abc"),  # charset designation, full reset
        ("a\x00b\x07c\x08d\x7fe\x85f", "abcdef"),  # NUL, BEL, BS, DEL, NEL
        ("evil\rgood", "evilgood"),  # carriage return would overwrite the line
        ("a\tb\nc", "a b c"),
        ("admin\u202efdp.exe", "adminfdp.exe"),  # right-to-left override
        ("\u2066x\u2069\u200ey\u200f", "xy"),  # isolates and marks
        ("Ünïcødé ✓ 東京", "Ünïcødé ✓ 東京"),  # printable text is untouched
        ("\x1b", ""),  # a lone ESC at the end
    ],
)
def test_safe_removes_escape_sequences_and_controls(raw: str, expected: str) -> None:
    assert safe(raw) == expected


def test_safe_keeps_tab_and_newline_only_when_multiline() -> None:
    assert safe("a\tb\n\x1b[1mc\r\n", multiline=True) == "a\tb\nc\n"
    assert safe("a\tb\n\x1b[1mc\r\n") == "a b c "


def test_safe_takes_any_object() -> None:
    assert safe(ValueError("bad\x1b[0m value")) == "bad value"
    assert safe(42) == "42"


def _alert(user: str, summary: str, detector: str = "suspicious_inbox_rule") -> Alert:
    return Alert(
        alert_id="al-0123456789abcdef01234567",
        detector=detector,
        title="Suspicious inbox rule",
        category=Category.SHADOW_WORKFLOW,
        severity=Severity.HIGH,
        tenant_id="9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11",
        user=user,
        user_key=None,
        first_seen=1_764_000_000.0,
        last_seen=1_764_000_060.0,
        evidence_record_ids=["rec-1"],
        mitre=("T1564.008",),
        summary=summary,
        dedup_key=f"{user}|{detector}",
    )


def test_scan_table_with_a_hostile_upn_rule_name_and_user_agent() -> None:
    text = format_table([_alert(HOSTILE_UPN, f"Inbox rule '{HOSTILE_RULE}' created from {HOSTILE_UA}")])
    assert UNSAFE.search(text) is None
    assert text.splitlines() == [
        "SEVERITY  DETECTOR               TENANT    USER               IP  FIRST SEEN            SUMMARY",
        "high      suspicious_inbox_rule  9f6a3d1e  megan@contoso.com  -   2025-11-24T16:00:00Z  "
        "Inbox rule '.' created from Mozilla/5.0clickexe.pdf",
    ]


def test_scan_missing_file_error_is_safe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "export\x1b]0;pwned\x07.json"
    assert cli_main.main(["scan", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == f"itdr scan: no such file or directory: {tmp_path}/export.json\n"


class _RaisingParser:
    """Stands in for the argparse parser: its handler raises the given error (main's printing is under test)."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def parse_args(self, argv: list[str]) -> argparse.Namespace:
        def handler(_args: argparse.Namespace) -> int:
            raise self.exc

        return argparse.Namespace(command="ip", handler=handler)


@pytest.mark.parametrize(
    ("exc", "rc", "expected"),
    [
        (BadInputError(f"unknown user {HOSTILE_UPN}"), 1, "itdr ip: unknown user megan@contoso.com\n"),
        (ConfigurationError("bad\x1b[2Jsetting\nnext"), 2, "itdr ip: badsetting next\n"),
        (RuntimeError(f"boom {HOSTILE_RULE}"), 1, "itdr ip: internal error: RuntimeError: boom .\n"),
    ],
)
def test_one_line_errors_on_stderr_are_safe(
    exc: Exception, rc: int, expected: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_main, "build_parser", lambda: _RaisingParser(exc))
    assert cli_main.main(["ip", "192.0.2.1"]) == rc
    assert capsys.readouterr().err == expected
