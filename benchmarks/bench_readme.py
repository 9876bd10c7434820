"""Times every command the README and the getting-started page show, as a new user runs them.

    python benchmarks/bench_readme.py            # each page's commands, import and --help times
    python benchmarks/bench_readme.py --suite    # also the quick test subset and the whole suite

Each command runs in a new empty folder (as ``tests/test_install.py`` checks they must); wall
time and the CPU time of the process and its children are printed side by side, with the load
average before each run, so a number taken on a busy machine says so. Set-up lines (``python -m
venv``, ``pip install``) are left to ``.ci/run``, which runs them in a fresh environment. Writes
``benchmarks/results/readme_times.json``.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/getting-started.md")


def blocks(path: Path, language: str) -> list[str]:
    """The fenced code blocks of ``language`` in a Markdown file, in reading order."""
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.S)


def page_commands(path: Path) -> list[tuple[str, str]]:
    """Every runnable block of a page: ``("python", code)`` per Python block and ``("bash", line)``
    per shell line; set-up lines (``python -m venv``, ``pip install``, the test suite) are not
    included: ``.ci/run`` proves them."""
    out = [("python", code) for code in blocks(path, "python")]
    for block in blocks(path, "bash"):
        for line in block.strip().splitlines():
            if not re.match(r"(python -m venv|pip install|python -m pytest|#)", line.strip()):
                out.append(("bash", line.strip()))
    return out


def argv_of(kind: str, command: str) -> list[str]:
    """The process a command runs as; ``python examples/…`` is pointed at the checkout."""
    if kind == "bash" and command.startswith("python examples/"):
        script, *rest = command.split()[1:]
        return [sys.executable, str(ROOT / script), *rest]
    return [sys.executable, "-c", command] if kind == "python" else ["bash", "-c", command]


def timed(argv: list[str], cwd: Path | str) -> dict:
    """Run ``argv`` in ``cwd``; wall and CPU seconds (children's user + system), exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_before": round(load, 2),
            "exit": done.returncode, "tail": (done.stdout + done.stderr).strip().splitlines()[-1:]}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", action="store_true", help="also time the quick test subset and the whole suite")
    args = p.parse_args(argv)
    rows = []
    for what, command in (("import", [sys.executable, "-c", "import permopt"]),
                          ("--help", [sys.executable, "-m", "permopt", "--help"])):
        rows.append({"page": "-", "command": what, **timed(command, ROOT)})
    for page in PAGES:
        with tempfile.TemporaryDirectory() as folder:  # one empty folder per page: later lines may read earlier output
            for kind, command in page_commands(ROOT / page):
                label = command.strip().splitlines()[0][:60] + (" ..." if kind == "python" else "")
                rows.append({"page": page, "command": label, **timed(argv_of(kind, command), folder)})
                print(rows[-1], flush=True)
    if args.suite:
        for label, extra in (("quick subset", ["-m", "not slow"]), ("whole suite", [])):
            rows.append({"page": "tests", "command": label,
                         **timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra], ROOT)})
            print(rows[-1], flush=True)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import print_table, write_json

    print(f"{os.cpu_count()} cores; load average before each run in load_before")
    print_table(rows, ["page", "command", "wall_s", "cpu_s", "load_before", "exit"])
    write_json("readme_times", {"rows": rows})
    return rows


if __name__ == "__main__":
    main()
