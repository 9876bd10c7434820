"""Print the README's first fenced ``bash`` block, one command a line: the set-up lines, then the
two commands (install + main job, tests). Exits 1 naming what is wrong when the block is missing or
has fewer than three lines. Standard library only: it runs before anything is installed."""
import sys
from pathlib import Path

readme = Path(__file__).resolve().parents[1] / "README.md"
lines, inside = [], False
for raw in readme.read_text().splitlines():
    if not inside and raw.strip() == "```bash":
        inside = True
    elif inside and raw.strip() == "```":
        break
    elif inside and raw.strip() and not raw.lstrip().startswith("#"):
        lines.append(raw.strip())
if len(lines) < 3:
    sys.exit(f"{readme}: the first ```bash block must hold the set-up lines and then the two commands; found {lines}")
print("\n".join(lines))
