"""Packaging: the wheel holds every module and data file of ``lib`` plus the configs, and works installed.

The wheel is built once per module from a copy of the packaging inputs (top-level files, ``lib/``,
``experiments/``): a build in the checkout itself would reuse its ``build/`` folder, where files removed from
``lib/`` linger and end up in the wheel, and would race with a build of another process in the same folder.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Generated, git-ignored local path files (one user's paths): setup.py leaves them out of the wheel.
LOCAL_PATH_FILES = {"lib/test/evaluation/local.py", "lib/train/admin/local.py"}
#: Package data other than the configs (setup.py package_data).
DATA_GLOBS = ("lib/test/evaluation/lists/*.json", "lib/train/data_specs/*.txt")


def _relative(paths, root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in paths if "__pycache__" not in path.parts}


def checkout_modules() -> set[str]:
    return _relative((REPO / "lib").rglob("*.py"), REPO) - LOCAL_PATH_FILES


def checkout_data() -> set[str]:
    data = {f"lib/experiments/{name}" for name in _relative(REPO.glob("experiments/*/*.yaml"), REPO / "experiments")}
    for pattern in DATA_GLOBS:
        data |= _relative(REPO.glob(pattern), REPO)
    return data


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for path in REPO.iterdir():
        if path.is_file():
            shutil.copy2(path, src / path.name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("lib", "experiments"):
        shutil.copytree(REPO / folder, src / folder, ignore=ignore)
    for name in LOCAL_PATH_FILES:  # stand-ins for a user's generated local path files: must not be shipped
        (src / name).write_text("save_dir = '/home/someone/private'\n")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "-w", str(tmp / "dist"), str(src)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = (tmp / "dist").glob("fartrack-*.whl")
    return built


def test_wheel_holds_every_module_and_data_file(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = {name for name in archive.namelist() if name.startswith("lib/")}
    modules = {name for name in names if name.endswith(".py")}
    expected_modules = checkout_modules()
    assert "lib/models/fartrack/network.py" in expected_modules  # the FARTrack network itself
    assert not expected_modules - modules, f"modules missing from the wheel: {sorted(expected_modules - modules)}"
    assert not modules - expected_modules, f"modules in the wheel but not in lib/: {sorted(modules - expected_modules)}"
    data = names - modules
    expected_data = checkout_data()
    assert "lib/experiments/fartrack/fartrack_tiny_224_full.yaml" in expected_data
    assert not expected_data - data, f"data files missing from the wheel: {sorted(expected_data - data)}"
    assert not data - expected_data, f"unexpected files in the wheel: {sorted(data - expected_data)}"


def test_installed_wheel_builds_the_network_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target", str(site),
         str(wheel)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    code = (
        "from lib.api import build_tracker, load_network\n"
        "import lib\n"
        "from lib.config.loader import resolve_config_path\n"
        "from lib.test.evaluation.datasets import LISTS_DIR\n"
        "from lib.train.admin.environment import DATA_SPECS_DIR\n"
        "print(lib.__file__)\n"
        "print(resolve_config_path('fartrack', 'fartrack_tiny_224_full'))\n"
        "assert (LISTS_DIR / 'lasot.json').is_file() and (DATA_SPECS_DIR / 'got10k_train_split.txt').is_file()\n"
        "net = load_network('fartrack', 'fartrack_tiny_224_full')\n"
        "print(type(net).__name__, net.depth)\n"
    )
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("FARTRACK_")}
    env.update(PYTHONPATH=str(site), PYTHONNOUSERSITE="1")
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lib_file, config_file, network = done.stdout.splitlines()[-3:]
    assert Path(lib_file).resolve() == (site / "lib" / "__init__.py").resolve()
    assert Path(config_file) == (site / "lib/experiments/fartrack/fartrack_tiny_224_full.yaml").resolve()
    assert network == "FARTrackNetwork 15"
