"""What every `concierge` command's parser shares: `--help` that shows each option's default.

`bots/` and `workers/` both define commands, so the one formatter they use lives here.
"""

from __future__ import annotations

import argparse


class CommandHelp(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (docstrings are wrapped already), and every option's
    help ending in its default, like `argparse.ArgumentDefaultsHelpFormatter`, except where the
    help names its default itself, where the default is None (the help says what happens
    then) and for flags, which are off unless given."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        says_it = "%(default)" in text or "default" in text.lower()
        if says_it or action.default in (None, argparse.SUPPRESS) or action.nargs == 0:
            return text
        return f"{text} (default: %(default)s)"
