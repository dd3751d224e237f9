"""The model passes methods share, and :class:`Passes`, what one explainer call computed.

An explainer call runs, once each: the plain gradient pass (input gradient and the activations
and gradients of every CAM block asked for), one gradient pass per replaced activation (Guided
Backprop's guided ReLU), and one stream of chunked passes for every distinct plan (noise and path
augmentations, :mod:`saljax.saliency.augment`). Methods then finish their maps from
:class:`Passes`.
"""
from __future__ import annotations

import dataclasses
import hashlib

import jax
import jax.numpy as jnp
import numpy as np

from saljax.models import tapped_forward, with_activation
from saljax.saliency.augment import images_of
from saljax.saliency.streams import sum_over_streams


def logits_fn(model, variables):
    """images -> float32 logits, inference mode."""
    v = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
    return lambda images: model.apply(v, images)


def predicted(model, variables, images):
    """The predicted class of each image (one forward pass): [B] int32."""
    return jnp.argmax(logits_fn(model, variables)(images), axis=-1).astype(jnp.int32)


def gradient_pass(model, variables, images, targets=None, blocks=(), wrt_input=True):
    """One pass: d logit[target] / d (image and named-block activations).

    ``targets=None`` explains the predicted class, read from the same forward pass (the backward
    pass starts from a one-hot cotangent chosen after the forward). With ``wrt_input=False`` the
    backward pass stops at the deepest block. Returns ``(logits, targets, input_grads [B, H, W, C]
    or None, {block: (activation, gradient)})``.
    """
    forward, zeros = tapped_forward(model, variables, images, tuple(blocks))
    if wrt_input:
        logits, vjp, acts = jax.vjp(forward, images, zeros, has_aux=True)
    else:
        logits, vjp, acts = jax.vjp(lambda taps: forward(images, taps), zeros, has_aux=True)
    if targets is None:
        targets = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    grads = vjp(jax.nn.one_hot(targets, logits.shape[-1], dtype=logits.dtype))
    grad_x, grad_taps = grads if wrt_input else (None, grads[0])
    return logits, targets, grad_x, {b: (acts[b], grad_taps[b]) for b in acts}


def input_gradient(model, variables):
    """(images [N, H, W, C], targets [N]) -> d logit[target] / d image, float32 [N, H, W, C]."""
    def grad(images, targets):
        return gradient_pass(model, variables, images, targets)[2].astype(jnp.float32)
    return grad


class Passes:
    """The shared passes of one call on ``images`` [B, H, W, C] float32.

    ``targets`` [B] int32, or None until the first pass decides them (the predicted class);
    ``key``, ``segments`` and ``offset`` (the batch's position among all images, for noise drawn
    by global image index) are the call's. Filled by :meth:`run`; read by methods' ``finish``.
    """

    def __init__(self, model, variables, images, targets, key, segments, offset, max_batch):
        self.model, self.variables = model, variables
        self.images, self.targets = images, targets
        self.key, self.segments, self.offset = key, segments, offset
        self.max_batch = max_batch
        self._input_grads, self._blocks, self._plans = {}, {}, {}

    def input_gradient(self, act=None):
        """d logit[target] / d image [B, H, W, C] float32, ReLUs replaced by ``act``."""
        return self._input_grads[act].astype(jnp.float32)

    def block(self, name):
        """(activation, gradient) at a named block, from the plain pass: [B, h, w, c] each."""
        return self._blocks[name]

    def plan(self, plan):
        """What ``plan``'s stream finished to (e.g. SmoothGrad's moments, IG's attributions)."""
        return self._plans[plan_key(plan)]

    def run(self, acts, blocks, plain_input: bool, plans, forward_only: bool) -> "Passes":
        """The plain pass (when ``None`` is among ``acts`` or ``blocks`` are asked for), the
        predicted class where needed, one pass per other activation, then every plan's stream."""
        model, variables = self.model, self.variables
        if None in acts or blocks:
            _, t, gx, taps = gradient_pass(model, variables, self.images, self.targets,
                                           blocks, wrt_input=plain_input)
            self.targets = t
            self._input_grads[None] = gx
            self._blocks.update(taps)
        if self.targets is None and (plans or forward_only):
            self.targets = predicted(model, variables, self.images)
        for act in acts:
            if act is not None:
                _, t, gx, _ = gradient_pass(with_activation(model, act), variables, self.images,
                                            self.targets)
                self.targets = t
                self._input_grads[act] = gx
        if plans:
            built = [p.stream(images_of(self.images), self) for p in plans]
            sums = sum_over_streams(input_gradient(model, variables), self.targets,
                                    [s for s, _ in built], self.images.shape[1:], self.max_batch)
            for p, (_, finish), s in zip(plans, built, sums):
                self._plans[plan_key(p)] = finish(s)
        return self


def plan_key(plan):
    """What makes two plans equal: their type and fields, arrays (an array baseline) by shape,
    dtype and content. Methods asking for equal plans share one stream."""
    if dataclasses.is_dataclass(plan):
        return (type(plan),) + tuple(plan_key(getattr(plan, f.name))
                                     for f in dataclasses.fields(plan))
    try:
        hash(plan)
    except TypeError:
        a = np.asarray(plan)
        return ("array", a.shape, str(a.dtype), hashlib.sha1(a.tobytes()).hexdigest())
    return plan
