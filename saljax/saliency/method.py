"""What a saliency method is: one record, ``Method``, in one file of ``saljax.saliency.methods``.

A method names its hyperparameters (each with PAIR's default and a check), the model passes it
reads (shared with every other method of the same call) and how it finishes its map from them:

* ``gradients``: single gradient passes, :class:`InputGradient` (with the model's ReLUs replaced
  by ``act`` for Guided Backprop or DeconvNet) and :class:`BlockGradient` (activation and
  gradient at a named block, for CAMs); methods asking for the same pass share it;
* ``plan``: a stream of passes described by the augmentations of :mod:`saljax.saliency.augment`
  (noise, straight paths) around the gradient; equal plans (SmoothGrad and VarGrad with the same
  noise) are computed once;
* ``own_passes``: forward passes the method runs itself (occlusion).

``finish(passes, hparams)`` turns the shared results (:class:`saljax.saliency.passes.Passes`)
into the method's maps, float32 [B, H, W, C] or, for ``spatial`` methods, [B, H, W].
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Hashable, Mapping

import numpy as np

Check = Callable[[str, Any, Any], Any]   # (name, value, model) -> value, or raise ValueError


@dataclasses.dataclass(frozen=True)
class Param:
    """A hyperparameter: its default and a check returning the value to use (or raising)."""
    default: Any
    check: Check = lambda name, value, model: value


def _positive_int(name, value, model):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _nonnegative(name, value, model):
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def _block(name, value, model):
    from saljax.models import block_names
    value = value or model.default_cam_block
    if value not in block_names(model):
        raise ValueError(f"unknown block {value!r} for {model.name_in_registry}; "
                         f"named blocks are {', '.join(block_names(model))}")
    return value


def one_of(default, *choices) -> Param:
    """One of ``choices`` (the default first)."""
    def check(name, value, model):
        if value not in (default,) + choices:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, (default,) + choices))}"
                             f", got {value!r}")
        return value
    return Param(default, check)


def count(default: int) -> Param:
    """A positive integer (samples, steps, pixels)."""
    return Param(default, _positive_int)


def nonnegative(default: float) -> Param:
    return Param(default, _nonnegative)


def _flag(name, value, model):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _percent(name, value, model):
    if not (isinstance(value, (int, float)) and 0 < value <= 100):
        raise ValueError(f"{name} must be a percentile in (0, 100], got {value!r}")
    return float(value)


def _finite(name, value, model):
    a = np.asarray(value)
    if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be a finite number (or array), got {value!r}")
    return value


def _fraction(name, value, model):
    if not (isinstance(value, (int, float)) and 0 < value <= 1):
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return float(value)


def flag(default: bool) -> Param:
    return Param(default, _flag)


def percent(default: float) -> Param:
    return Param(default, _percent)


def finite(default) -> Param:
    """A finite number, or an array of them (a baseline image)."""
    return Param(default, _finite)


def fraction(default: float) -> Param:
    return Param(default, _fraction)


def block() -> Param:
    """A named block of the model; ``None`` is the model's ``default_cam_block``."""
    return Param(None, _block)


@dataclasses.dataclass(frozen=True)
class InputGradient:
    """One shared pass: d logit[target] / d input, every ReLU replaced by ``act`` (None: plain)."""
    act: Callable | None = None


@dataclasses.dataclass(frozen=True)
class BlockGradient:
    """The activation of a named block and d logit[target] / d activation, from the plain pass.
    ``block`` names an hparam holding the block's name."""
    hparam: str = "block"


@dataclasses.dataclass(frozen=True)
class Method:
    """One saliency method (see the module docstring)."""
    name: str
    hparams: Mapping[str, Param]
    finish: Callable                                   # (Passes, hparams) -> maps
    gradients: tuple = ()                              # InputGradient / BlockGradient requests
    plan: Callable[[dict], Hashable] | None = None     # hparams -> augmentation (multi-pass)
    own_passes: Callable[[dict, tuple], int] | None = None   # forward-only passes per image
    check_images: Callable[[dict, tuple], None] | None = None  # (hparams, images shape)
    visualized: Callable[[dict], bool] | None = None   # hparams -> maps already in [0, 1]
    stochastic: bool = False                           # draws noise: needs a key
    spatial: bool = False                              # maps [B, H, W]
    needs_segments: bool = False                       # XRAI's segments

    @property
    def defaults(self) -> dict:
        return {k: p.default for k, p in self.hparams.items()}

    @property
    def multi_pass(self) -> bool:
        """Whether it needs more than one pass per image beyond the shared single ones."""
        return self.plan is not None or self.own_passes is not None

    def resolve(self, hparams: Mapping[str, Any], model) -> dict:
        """The defaults overridden by ``hparams``, every value checked (against ``model`` for
        blocks); unknown names are an error listing the known ones."""
        unknown = set(hparams) - set(self.hparams)
        if unknown:
            known = ", ".join(self.hparams) or "none"
            raise ValueError(f"unknown hyperparameter(s) {', '.join(sorted(unknown))} for "
                             f"{self.name}; it takes: {known} (and max_batch)")
        hp = {**self.defaults, **hparams}
        try:
            return {k: self.hparams[k].check(k, v, model) for k, v in hp.items()}
        except ValueError as e:
            raise ValueError(f"{self.name}: {e}") from None
