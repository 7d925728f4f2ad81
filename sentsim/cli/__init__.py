"""The ``sentsim`` command: results on stdout, progress and messages on stderr."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import sys
import threading

from sentsim._version import __version__
from sentsim.cli import classify, encode, evaluate, export, mine, search, serve, similarity, train

COMMANDS = (encode, similarity, evaluate, classify, train, mine, search, serve, export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentsim", description="Sentence embeddings and similarity with Siamese bi-encoders."
    )
    parser.add_argument("--version", action="version", version=f"sentsim {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    _finish_subcommands(parser, set())
    return parser


def _finish_subcommands(parser: argparse.ArgumentParser, seen: set[int]) -> None:
    """Give every subcommand ``-v`` (so it works after the command name too) and its full name
    (``sentsim index build``) for messages."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for subparser in action.choices.values():
            if id(subparser) in seen:  # an alias ("evaluate" for "eval") is the same parser
                continue
            seen.add(id(subparser))
            subparser.add_argument(
                "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress details to stderr"
            )
            subparser.set_defaults(command_name=subparser.prog)
            _finish_subcommands(subparser, seen)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    quiet = getattr(args, "no_progress", False)
    if quiet:  # also the bars of the libraries sentsim calls (restored after: main may be called from Python)
        import datasets

        bars_were_on = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:  # SIGTERM unwinds like Ctrl-C, so unfinished outputs are cleaned up
        previous_handler = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args) or 0
    except BrokenPipeError:  # the reader went away (``... | head``): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, TypeError, OSError, sqlite3.Error) as error:  # sqlite3: e.g. an index locked by a writer
        logging.getLogger(__name__).debug("details", exc_info=True)
        print(f"{args.command_name}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{args.command_name}: interrupted; unfinished outputs were removed", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"{args.command_name}: terminated; unfinished outputs were removed", file=sys.stderr)
        return 143
    except Exception as error:  # noqa: BLE001 - what no command names is still one line, not a traceback
        logging.getLogger(__name__).debug("details", exc_info=True)
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"sentsim: {type(error).__name__}{': ' + message if message else ''}", file=sys.stderr)
        return 1
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)
        if quiet and bars_were_on:
            datasets.enable_progress_bars()


class _Terminated(BaseException):
    """SIGTERM, raised where the command is, so that its cleanup runs."""


def _terminate(signum, frame) -> None:
    raise _Terminated
