"""`itdr`: the command line of m365-itdr.

Exit codes: 0 when the command ran (with or without alerts), 2 on a usage error, 1 on an
internal failure with a one-line reason. Bad input never produces a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib import metadata

from shared.cli.terminal import safe
from shared.platform.errors import ConfigurationError, ItdrError

# Subcommand modules that add themselves with register(subparsers); an explicit list.
_SUBCOMMAND_MODULES = (
    "shared.cli.alerts_cmd",
    "shared.cli.remediate_cmd",
    "shared.cli.ops_cmd",
    "shared.cli.report_cmd",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {safe(message)}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="itdr", description="m365-itdr: identity threat detection and response for Microsoft 365")
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="print the version and exit"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    scan = sub.add_parser(
        "scan",
        help="detect over exported unified audit log records",
        description="Run every detector over exported unified audit log records (content blobs, JSON Lines, "
        "Purview / Get-UAL CSV and JSON, Graph audit log queries, Sentinel OfficeActivity; gzip or zip), "
        "in CreationTime order, in bounded memory.",
    )
    scan.add_argument("paths", nargs="+", metavar="PATH", help="file, directory (recursive) or - for standard input")
    scan.add_argument(
        "--format",
        choices=["jsonl", "table", "html", "ocsf"],
        default=None,
        help="alert format (default: table on a terminal, jsonl otherwise)",
    )
    scan.add_argument("--output", metavar="FILE", help="write the alerts to FILE instead of standard output")
    scan.add_argument("--incidents", metavar="FILE", help="also write the incidents (JSON Lines) to FILE")
    scan.add_argument(
        "--summary", metavar="FILE", help="write the JSON summary (counts, reasons, skipped files) to FILE"
    )
    scan.add_argument("--config", metavar="FILE", help="JSON config: tenants' internal domains, countries, intel feeds")
    scan.add_argument(
        "--since", metavar="TIME", help="only records at or after TIME (ISO 8601 date or time; UTC without a zone)"
    )
    scan.add_argument("--until", metavar="TIME", help="only records before TIME (ISO 8601 date or time)")
    scan.add_argument("--tenant", metavar="ID", action="append", help="only records of this tenant id (repeatable)")
    scan.add_argument(
        "--user", metavar="UPN", action="append", help="only records of this user, by UPN or object id (repeatable)"
    )
    scan.add_argument(
        "--quarantine",
        metavar="FILE",
        help="write every quarantined record (reason, location, raw) to FILE as JSON Lines",
    )
    scan.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no notes on standard error")
    scan.add_argument(
        "--max-expansion-ratio",
        metavar="N",
        type=float,
        default=None,
        help="quarantine the rest of a gzip/zip stream that expands more than N times (default 1000)",
    )
    scan.add_argument(
        "--max-expanded-mb",
        metavar="MB",
        type=float,
        default=None,
        help="quarantine the rest of a gzip/zip stream past MB megabytes expanded (default 65536)",
    )
    scan.add_argument(
        "--temp-dir", metavar="DIR", help="where sorted runs of large scans are spilled (default: the system's)"
    )
    scan.add_argument("--run-records", type=int, default=None, help=argparse.SUPPRESS)  # the bench's smoke run
    scan.set_defaults(handler="shared.cli.scan:run")

    ip = sub.add_parser("ip", help="what is known about IP addresses: each source's verdict and age")
    ip.add_argument("addresses", nargs="+", metavar="ADDRESS", help="IPv4 or IPv6 address")
    ip.add_argument(
        "--format",
        choices=["json", "jsonl", "table"],
        default=None,
        help="output format (default: table on a terminal)",
    )
    ip.add_argument("--config", metavar="FILE", help="JSON config with the intel feeds (as for scan)")
    ip.set_defaults(handler="shared.cli.ip_cmd:run")

    for modname in _SUBCOMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name != modname:
                raise
            continue
        mod.register(sub)
    return parser


def _is_auth_error(exc: BaseException) -> bool:
    """An Azure credential failure (azure-core's ClientAuthenticationError and azure-identity's subclasses), told
    by class name so that `itdr` does not import the Azure SDK to report it."""
    return any(c.__name__ == "ClientAuthenticationError" for c in type(exc).__mro__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _version() -> str:
    try:
        return metadata.version("m365-itdr")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    try:
        if callable(handler):
            rc = handler(args)
        else:
            modname, func = str(handler).split(":")
            rc = getattr(importlib.import_module(modname), func)(args)
        return int(rc or 0)
    except ConfigurationError as exc:
        print(f"itdr {args.command}: {safe(exc)}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        print(f"itdr {args.command}: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 2
    except ItdrError as exc:
        print(f"itdr {args.command}: {safe(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if _is_auth_error(exc):
            print(
                f"itdr {args.command}: not signed in to Azure: {safe(_first_line(exc))} (run 'az login')",
                file=sys.stderr,
            )
            return 2
        print(f"itdr {args.command}: internal error: {type(exc).__name__}: {safe(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
