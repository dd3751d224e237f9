"""XRAI (Kapishnikov et al., 2019) as PAIR computes it: IG from a black and a white baseline
(the image's min and max), averaged, the channel maximum, then the greedy selection of the
image's segments (:mod:`saljax.saliency.xrai_regions`), [B, H, W].

Its map is signed (a region's summed attribution). ``sign="absolute"`` (saljax's) leaves the
map as it is, so the study's grayscale step ranks regions by magnitude; ``sign="signed"``
min-max scales it into [0, 1] (most negative region lowest, as XRAI ranks regions) and marks it
visualized. The study's code does not settle which it did: its ``VisualizeImageGrayscale`` call
on XRAI's 2-D map would not run."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from saljax.saliency import xrai_regions as xrai
from saljax.saliency.augment import Items, path_stream
from saljax.saliency.method import Method, count, fraction, nonnegative, one_of


@dataclasses.dataclass(frozen=True)
class BlackAndWhitePaths:
    """IG of each image from its black (min) and white (max) baselines, averaged, channel max:
    [B, H, W]. Items 2i and 2i + 1 are image i's two paths."""
    steps: int

    def passes_per_item(self) -> int:
        return 2 * self.steps

    def stream(self, items: Items, ctx):
        images = items.all()
        b = images.shape[0]
        lo = jnp.min(images, axis=(1, 2, 3), keepdims=True)
        hi = jnp.max(images, axis=(1, 2, 3), keepdims=True)
        base = jnp.stack([jnp.broadcast_to(lo, images.shape),
                          jnp.broadcast_to(hi, images.shape)], axis=1)
        base = base.reshape((2 * b,) + images.shape[1:])
        twice = jnp.repeat(images, 2, axis=0)
        stream, ig = path_stream(Items(2 * b, lambda j: twice[j], lambda j: j // 2, twice),
                                 lambda j: base[j], base, self.steps)
        return stream, lambda sums: ig(sums).reshape((b, 2) + images.shape[1:]).mean(
            axis=1).max(axis=-1)


def plan(hp):
    return BlackAndWhitePaths(hp["steps"])


def finish(passes, hp):
    if passes.segments is None:
        raise ValueError("xrai needs segments: call the explainer outside jit, or pass "
                         "segments=saljax.saliency.xrai_segments(images)")
    attr = passes.plan(plan(hp))
    atom_id, membership, sizes = (jnp.asarray(a) for a in passes.segments)
    out = jax.vmap(lambda a, i, m, s: xrai.greedy(a, i, m, s, hp["area_threshold"],
                                                  hp["min_pixel_diff"]))(
        attr, atom_id, membership, sizes)
    if hp["sign"] == "signed":
        lo = jnp.min(out, axis=(1, 2), keepdims=True)
        span = jnp.max(out, axis=(1, 2), keepdims=True) - lo
        out = jnp.where(span > 0, (out - lo) / jnp.where(span > 0, span, 1.0), 0.0)
    return out


METHOD = Method(
    name="xrai",
    hparams={"steps": count(100), "area_threshold": fraction(1.0),
             "min_pixel_diff": nonnegative(50), "sign": one_of("absolute", "signed")},
    plan=plan,
    finish=finish,
    spatial=True,
    needs_segments=True,
    visualized=lambda hp: hp["sign"] == "signed",
)
