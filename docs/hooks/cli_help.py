"""MkDocs hook: the command-line reference is the parser's own ``--help``, generated at build
time so that it cannot drift from the code.

A page that contains the line ``<!-- emcal-cli-help -->`` gets, in its place, the help of
``emcal`` and of every subcommand (and their subcommands), each under its own heading.
"""

from __future__ import annotations

import argparse
import os

MARKER = "<!-- emcal-cli-help -->"


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _sections(parser: argparse.ArgumentParser, words: list[str], level: int):
    yield f"{'#' * level} `{' '.join(words)}`\n\n```text\n{parser.format_help().rstrip()}\n```\n"
    for name, sub in _subparsers(parser):
        yield from _sections(sub, [*words, name], min(level + 1, 4))


def cli_reference() -> str:
    """Markdown of ``emcal --help`` and every subcommand's help."""
    from napari_emcal.cli import build_parser

    os.environ.setdefault("COLUMNS", "96")  # argparse wraps at the terminal's width
    return "\n".join(_sections(build_parser(), ["emcal"], 2))


def on_page_markdown(markdown, page, config, files):
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown
