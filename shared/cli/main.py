"""`itdr`: the command line of m365-itdr.

Exit codes: 0 when the command ran (with or without alerts), 2 on a usage error, 1 on an
internal failure with a one-line reason. Bad input never produces a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

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
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="itdr", description="m365-itdr: identity threat detection and response for Microsoft 365")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    scan = sub.add_parser("scan", help="detect over exported unified audit log records")
    scan.add_argument("paths", nargs="+", metavar="PATH", help="file, directory (recursive) or - for stdin")
    scan.add_argument("--format", choices=["jsonl", "table", "html", "ocsf"], default=None)
    scan.add_argument("--output", metavar="FILE")
    scan.add_argument("--incidents", metavar="FILE", help="also write the incidents as JSON Lines")
    scan.add_argument("--summary", metavar="FILE")
    scan.add_argument("--config", metavar="FILE")
    scan.set_defaults(handler="shared.cli.scan:run")

    ip = sub.add_parser("ip", help="what is known about IP addresses: each source's verdict and age")
    ip.add_argument("addresses", nargs="+", metavar="ADDRESS")
    ip.add_argument("--format", choices=["json", "jsonl", "table"], default=None)
    ip.add_argument("--config", metavar="FILE")
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
        print(f"itdr {args.command}: {exc}", file=sys.stderr)
        return 2
    except ItdrError as exc:
        print(f"itdr {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        print(f"itdr {args.command}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
