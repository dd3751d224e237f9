"""RetinaNet (Lin et al., "Focal Loss for Dense Object Detection", 2017): the study's RSNA
localization baseline, a detector trained on the lesion boxes.

``RetinaNet(width=w)`` maps NHWC images [B, S, S, 3] to ``(class_logits [B, A, K], box_deltas
[B, A, 4])`` (float32) over the anchors of :func:`saljax.models.boxes.anchors` (``A`` = 9 per
cell of P3-P7; their size, ``anchor_scale`` strides, is the detector's setting, not the
network's). A ResNet-50 backbone (bottleneck stages of 3, 4, 6, 3 blocks; channels scaled
by ``width``), a feature pyramid (P3-P5 from C3-C5 by lateral 1x1 convs and top-down
nearest-neighbour upsampling; P6 a strided 3x3 conv of C5, P7 one of ReLU(P6)), and class and
box subnets of four 3x3 convs + ReLU shared by every level. The class subnet's last bias
starts at ``-log((1 - 0.01) / 0.01)`` (every anchor background with probability 0.99).
:func:`detect` turns outputs into fixed-size detections under ``jit``.
"""
from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from saljax.models import boxes as bx
from saljax.models.init import init
from saljax.models.layers import Layers, channels, check_images

STAGES = (3, 4, 6, 3)    # ResNet-50
PRIOR = 0.01             # every anchor starts as an object with this probability


class _Bottleneck(nn.Module):
    features: int
    strides: int
    layers: Layers

    @nn.compact
    def __call__(self, x, train):
        ly = self.layers
        y = ly.act(ly.conv_bn(self.features, 1, train=train, conv_name="conv1", bn_name="bn1")(x))
        y = ly.act(ly.conv_bn(self.features, 3, self.strides, train=train, conv_name="conv2",
                              bn_name="bn2")(y))
        y = ly.conv_bn(4 * self.features, 1, train=train, conv_name="conv3", bn_name="bn3")(y)
        if x.shape[-1] != y.shape[-1] or self.strides != 1:
            x = ly.conv_bn(4 * self.features, 1, self.strides, train=train,
                           conv_name="proj_conv", bn_name="proj_bn")(x)
        return ly.act(x + y)


class _Subnet(nn.Module):
    """Four 3x3 conv + ReLU, then a 3x3 conv to ``outputs`` per anchor, on every level."""
    features: int
    outputs: int
    bias: float
    layers: Layers

    @nn.compact
    def __call__(self, levels):
        convs = [self.layers.conv(self.features, 3, name=f"conv{i}", bias=True) for i in range(4)]
        head = nn.Conv(bx.ANCHORS_PER_CELL * self.outputs, (3, 3), padding="SAME",
                       kernel_init=nn.initializers.normal(0.01),
                       bias_init=nn.initializers.constant(self.bias), name="head")
        out = []
        for p in levels:
            for conv in convs:
                p = self.layers.act(conv(p))
            p = head(p).astype(jnp.float32)
            out.append(p.reshape(p.shape[0], -1, self.outputs))
        return jnp.concatenate(out, axis=1)


class RetinaNet(nn.Module):
    width: float = 1.0
    num_classes: int = 1
    bn_momentum: float = 0.9
    dtype: jnp.dtype = jnp.float32

    name_in_registry = "retinanet"
    min_size = 32

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_images(x, "RetinaNet", self.min_size)
        ly = Layers(dtype=self.dtype, bn_momentum=self.bn_momentum)
        x = x.astype(self.dtype)
        x = ly.act(ly.conv_bn(channels(64, self.width), 7, 2, train=train, conv_name="stem_conv",
                              bn_name="stem_bn")(x))
        x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
        c = []
        for s, blocks in enumerate(STAGES):
            for b in range(blocks):
                x = _Bottleneck(channels(64 * 2 ** s, self.width), 2 if s and not b else 1, ly,
                                name=f"stage{s + 1}_block{b + 1}")(x, train)
            c.append(x)
        f = channels(256, self.width)
        c3, c4, c5 = c[1:]
        p5 = ly.conv(f, 1, name="lateral5", bias=True)(c5)
        p4 = ly.conv(f, 1, name="lateral4", bias=True)(c4) + _upsample(p5, c4.shape)
        p3 = ly.conv(f, 1, name="lateral3", bias=True)(c3) + _upsample(p4, c3.shape)
        p3, p4, p5 = (ly.conv(f, 3, name=f"smooth{i}", bias=True)(p)
                      for i, p in zip((3, 4, 5), (p3, p4, p5)))
        p6 = ly.conv(f, 3, 2, name="p6", bias=True)(c5)
        p7 = ly.conv(f, 3, 2, name="p7", bias=True)(ly.act(p6))
        levels = (p3, p4, p5, p6, p7)
        prior = -math.log((1 - PRIOR) / PRIOR)
        logits = _Subnet(f, self.num_classes, prior, ly, name="class_subnet")(levels)
        deltas = _Subnet(f, 4, 0.0, ly, name="box_subnet")(levels)
        return logits, deltas


def initial_variables(model: RetinaNet, key, size: int | None = None) -> dict:
    """Fresh variables (:func:`saljax.models.init`, Glorot kernels) with the paper's subnet
    heads: kernels drawn from N(0, 0.01^2), the class bias at the prior ``PRIOR``."""
    v = init(model, key, size=size)
    params = dict(v["params"])
    for name, bias in (("class_subnet", -math.log((1 - PRIOR) / PRIOR)), ("box_subnet", 0.0)):
        head = dict(params[name]["head"])
        k = jax.random.fold_in(key, len(name))
        head["kernel"] = 0.01 * jax.random.normal(k, head["kernel"].shape, jnp.float32)
        head["bias"] = jnp.full(head["bias"].shape, bias, jnp.float32)
        params[name] = {**params[name], "head": head}
    return {**v, "params": params}


def _upsample(p, shape):
    """Nearest-neighbour x2, cropped to ``shape``'s grid (odd sizes)."""
    p = jnp.repeat(jnp.repeat(p, 2, axis=1), 2, axis=2)
    return p[:, :shape[1], :shape[2]]


@functools.partial(jax.jit, static_argnames=("size", "anchor_scale", "pre_nms",
                                             "max_detections"))
def detect(class_logits, box_deltas, *, size: int, anchor_scale: float = 4.0,
           score_threshold: float = 0.05, iou_threshold: float = 0.5, pre_nms: int = 1000,
           max_detections: int = 100):
    """Detections of a batch of one-class outputs: the ``pre_nms`` best-scoring anchors,
    decoded and clipped to the image, above ``score_threshold``, then NMS. Returns ``boxes``
    [B, D, 4], ``scores`` [B, D] (probabilities) and ``valid`` [B, D]."""
    anchors = jnp.asarray(bx.anchors(size, anchor_scale))
    k = min(pre_nms, anchors.shape[0])

    def one(logits, deltas):
        scores = jax.nn.sigmoid(logits[:, 0])
        top, idx = jax.lax.top_k(scores, k)
        boxes = jnp.clip(bx.decode(deltas[idx], anchors[idx]), 0.0, float(size))
        ok = (top > score_threshold) & bx.valid_boxes(boxes)
        return bx.nms(boxes, top, ok, iou_threshold, max_detections)

    return jax.vmap(one)(class_logits, box_deltas)
