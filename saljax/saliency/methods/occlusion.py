"""Occlusion (Zeiler & Fergus, 2014) as PAIR computes it: the drop of the target logit when a
``size`` x ``size`` window (every ``stride`` pixels) is set to ``value`` (or, ``fill="blur"``,
replaced in distribution by its surroundings), summed over the windows covering each pixel,
[B, H, W]. Forward passes only, every window position batched."""
import math

import jax.numpy as jnp

from saljax.saliency import occlusion_windows as occ
from saljax.saliency.method import Method, count, finite, one_of
from saljax.saliency.passes import logits_fn
from saljax.saliency.streams import map_over_passes


def finish(passes, hp):
    images, targets = passes.images, passes.targets
    b, h, w = images.shape[:3]
    size, stride = hp["size"], hp["stride"]
    nh, nw = occ.positions(h, w, size, stride)
    logits = logits_fn(passes.model, passes.variables)

    def score(x, items):
        return jnp.take_along_axis(logits(x), targets[items][:, None], axis=1)[:, 0]

    base = score(images, jnp.arange(b))
    occluded = map_over_passes(
        score, b, nh * nw,
        lambda i, k: occ.occluded(images[i], k, size=size, stride=stride, value=hp["value"],
                                  n_cols=nw, fill=hp["fill"]),
        passes.max_batch)
    drops = (base[:, None] - occluded).reshape(b, nh, nw)
    return occ.scores_to_map(drops, (h, w), size=size, stride=stride)


METHOD = Method(
    name="occlusion",
    hparams={"size": count(15), "value": finite(0.0), "stride": count(1),
             "fill": one_of("constant", "blur")},
    finish=finish,
    own_passes=lambda hp, shape: 1 + math.prod(occ.positions(*shape[:2], hp["size"],
                                                             hp["stride"])),
    check_images=lambda hp, shape: occ.positions(shape[1], shape[2], hp["size"], hp["stride"]),
    spatial=True,
)
