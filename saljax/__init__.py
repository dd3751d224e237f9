"""saljax: can saliency maps be trusted to localize abnormalities in medical images?

Subpackages load on first use, as ``jax.numpy`` does under ``import jax``:
``import saljax; saljax.models.create("inception_v3")``.
"""
import importlib

__version__ = "0.1.0"

SUBMODULES = ("bench", "cli", "config", "configs", "data", "faithfulness", "files", "metrics",
              "models", "parallel", "protocol", "randomize", "report", "saliency", "study",
              "training")


def __getattr__(name):
    if name in SUBMODULES:
        if name == "configs":   # the repository's configs/ folder: saljax.config finds it
            importlib.import_module(f"{__name__}.config").built_in_dir()
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(SUBMODULES))
