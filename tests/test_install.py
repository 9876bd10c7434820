"""The README as a new user meets it: its set-up and two commands, its examples run as written in an
empty folder, a light ``import permopt``, typed ``prune`` keywords, and torchvision's work-around
tested by simulating the mismatch instead of requiring it."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap
from dataclasses import fields
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_readme import argv_of, blocks, page_commands  # noqa: E402  (one parser for the test and the timing)


def _readme_lines() -> list[str]:
    out = subprocess.run([sys.executable, str(ROOT / ".ci" / "readme_block.py")], capture_output=True, text=True,
                         check=True)
    return out.stdout.splitlines()


def test_readme_opens_with_the_set_up_then_the_two_commands():
    lines = _readme_lines()
    assert lines == [line.strip() for line in blocks(ROOT / "README.md", "bash")[0].strip().splitlines()]
    *setup, install_and_run, tests = lines
    assert setup[0] == "python -m venv .venv && . .venv/bin/activate"
    torch_line = next(line for line in setup if line.startswith("pip install torch=="))
    # torch and torchvision in one line from one index: no later install may swap the build
    assert re.search(r"torch==[\d.]+ torchvision==[\d.]+ --index-url \S+/cpu$", torch_line), torch_line
    assert install_and_run.startswith('pip install -e ".[dev]" && python examples/')
    assert (ROOT / install_and_run.split("python ")[-1].split()[0]).is_file()
    assert tests == "python -m pytest -q"


def test_getting_started_installs_as_the_readme_does():
    install = blocks(ROOT / "docs" / "getting-started.md", "bash")[0].strip().splitlines()
    assert install[:3] == _readme_lines()[:3]  # CI proves these lines (.ci/run)


def test_import_permopt_and_the_cli_load_neither_torch_nor_scipy():
    code = ("import sys, permopt, permopt.cli; "
            "print(sorted(m for m in ('torch', 'scipy', 'ortools', 'cvxpy', 'pulp') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_prune_keywords_mirror_prune_config():
    from permopt import PruneConfig, PruneOptions

    assert list(PruneOptions.__annotations__) == [f.name for f in fields(PruneConfig)]


def test_torchvision_work_around_warns_when_its_operators_do_not_load():
    if importlib.util.find_spec("torchvision") is None:  # importing it here could fail the real way
        pytest.skip("torchvision is not installed")
    # A finder that fails the way torchvision's meta registrations fail beside another torch build.
    code = textwrap.dedent("""
        import sys, warnings
        class Mismatch:
            def find_spec(self, name, path=None, target=None):
                if name == "torchvision._meta_registrations":
                    raise RuntimeError("operator torchvision::nms does not exist")
        sys.meta_path.insert(0, Mismatch())
        from permopt.models.external import import_torchvision
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tv = import_torchvision()
        print(tv.models.resnet18 is not None, *[str(w.message)[:39] for w in caught if w.category is RuntimeWarning])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True torchvision's compiled operators do not"


@pytest.mark.slow
def test_every_command_of_the_readme_and_getting_started_runs_as_written(tmp_path):
    # One folder, empty at the start, in reading order (README, then getting started): a command
    # both pages show runs once (bench_readme.py times each page on its own).
    seen: set = set()
    for page in ("README.md", "docs/getting-started.md"):
        for kind, command in page_commands(ROOT / page):
            if (kind, command) in seen:
                continue
            seen.add((kind, command))
            done = subprocess.run(argv_of(kind, command), cwd=tmp_path, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"{page}: {command[:80]!r} failed:\n{done.stderr[-2000:]}"
