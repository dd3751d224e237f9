"""Which packages ``pip install`` takes; everything else is in pyproject.toml.

The built-in configs live at the top of the repository (``configs/``, beside ``saljax/``) and are
installed as the package ``saljax.configs``, so that ``--config <name>`` works in any install.
"""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["saljax", "saljax.*"]) + ["saljax.configs"],
      package_dir={"saljax.configs": "configs"})
