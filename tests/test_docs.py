"""The documentation site builds without a warning and its command-line page is current."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_mkdocs_builds_strictly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "load_pruned" in api and "GroupingProblem" in api  # the reference is generated from the code


def test_cli_page_matches_the_parser():
    code = "import sys; sys.path.insert(0, 'docs'); import gen_cli; sys.stdout.write(gen_cli.render())"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout == (ROOT / "docs" / "cli.md").read_text(), "run python docs/gen_cli.py"


@pytest.mark.slow
@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md", "docs/guides/compare.md"])
def test_python_examples_on_the_front_pages_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # they write plan.json
    text = (ROOT / page).read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    assert blocks
    namespace: dict = {}  # a page's blocks build on each other
    for block in blocks:
        exec(compile(block, page, "exec"), namespace)
