"""Write docs/cli.md from the live argument parser: python docs/gen_cli.py (a test checks it is current)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

HEADER = """# Command line

`permopt COMMAND --help` prints what follows; `python -m permopt` is the same program. Errors are
one line on stderr naming the flag, the file or the layer, with exit code 2; outputs and
optional dependencies are checked before any long work starts.
"""


def render() -> str:
    """The page's text: the top-level help and each command's."""
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width; fix it for a stable page
    from permopt.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    out = [HEADER, "```text", parser.format_help().rstrip(), "```"]
    for name, sub in commands.items():
        out += ["", f"## permopt {name}", "", "```text", sub.format_help().rstrip(), "```"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    Path(__file__).with_name("cli.md").write_text(render())
    sys.exit(0)
