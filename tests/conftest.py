"""Make the repository root and this folder importable (``lib`` and the spec reference helpers)."""
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for path in (HERE.parent, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Test path settings isolated from the machine: only our FARTRACK_* variables, data under tmp/data,
    results under tmp/save, no local file."""
    from lib.test.evaluation import environment as test_env

    for name in list(os.environ):
        if name.startswith("FARTRACK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(test_env.LOCAL_FILE_ENV, str(tmp_path / "absent_local.py"))
    monkeypatch.setenv("FARTRACK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FARTRACK_SAVE_DIR", str(tmp_path / "save"))
    return test_env.env_settings()
