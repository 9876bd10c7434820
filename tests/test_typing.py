"""The public API is typed: mypy (configured in pyproject.toml) finds no errors in permopt."""
from pathlib import Path

import pytest

from mypy import api

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_mypy_finds_no_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # mypy reads [tool.mypy] from the project's pyproject.toml
    out, err, status = api.run(["--cache-dir", str(tmp_path / "mypy_cache")])
    assert status == 0, out + err
    assert (ROOT / "permopt" / "py.typed").exists()
