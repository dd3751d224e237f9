"""The built-in configs live in the repository's top-level configs/: taken by name from any
directory, importing each other, and shipped by a non-editable install as saljax.configs."""
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from saljax import config as sc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_built_in_configs_are_the_top_level_folder():
    assert os.path.samefile(sc.built_in_dir(), os.path.join(ROOT, "configs"))
    names = sc.built_in()
    assert {"synthetic", "tiny", "tiny_paper", "rsna_inception", "folder"} <= set(names)
    assert not os.path.exists(os.path.join(ROOT, "saljax", "configs"))
    for name in names:
        assert sc.load(name).to_dict()


def test_configs_by_name_from_another_directory(tmp_path):
    """A fresh interpreter elsewhere: a config that imports another one (tiny_paper: tiny:
    synthetic), and the lazily loaded ``saljax.configs``."""
    code = ("import saljax; from saljax.config import load; "
            "c = load('tiny_paper'); print(c.size, c.cascading_through, "
            "saljax.configs.__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["75", "mixed1", "saljax.configs"]


def test_a_wheel_ships_the_configs_as_saljax_configs(tmp_path):
    """``pip install .`` (not editable) installs what the wheel holds (built from a copy of the
    sources: pip builds in the tree it is given)."""
    src = tmp_path / "src"
    for name in ("saljax", "configs"):
        shutil.copytree(os.path.join(ROOT, name), src / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                          str(tmp_path), str(src)], capture_output=True, text=True, timeout=600)
    if out.returncode != 0 and "No matching distribution" in out.stderr:
        pytest.skip("no package index for pip's build requirements")
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = [f for f in os.listdir(tmp_path) if f.endswith(".whl")]
    with zipfile.ZipFile(tmp_path / wheel) as z:
        names = set(z.namelist())
    want = {f"saljax/configs/{f}" for f in os.listdir(os.path.join(ROOT, "configs"))
            if f.endswith(".py")}
    assert want <= names
    assert not any(n.startswith("configs/") for n in names)
