"""The example maps figure (``figures/examples.png``): a grid of one study image's maps over the
image with the lesion outline, across methods and randomization levels. Each criterion draws
its own figures (:mod:`saljax.study.criteria`)."""
from __future__ import annotations

import numpy as np

from saljax.study.criteria.render import plt, save

__all__ = ["examples_figure"]


def examples_figure(path_npz, path):
    """One study image's maps, a row per method, a column per cascading level named as the
    tables name it (the deepest block re-drawn; older examples.npz files without level names:
    the setting's name)."""
    with np.load(path_npz, allow_pickle=False) as f:
        image, mask, maps = f["image"], f["mask"], f["maps"]
        methods = list(f["methods"])
        columns = list(f["levels"] if "levels" in f else f["settings"])
    height = 1.3 * len(methods) + 0.4          # 0.4 in at the top for the title
    fig, axes = plt.subplots(len(methods), len(columns), figsize=(1.3 * len(columns), height),
                             squeeze=False)
    for i, m in enumerate(methods):
        for j, s in enumerate(columns):
            ax = axes[i, j]
            ax.imshow(image, cmap="gray")
            ax.imshow(maps[i, j], cmap="inferno", alpha=0.55, vmin=0, vmax=1)
            if mask.any():
                ax.contour(mask.astype(float), levels=[0.5], colors="cyan", linewidths=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(s, fontsize=6)
            if j == 0:
                ax.set_ylabel(m, fontsize=6)
    fig.suptitle("Cascading randomization: each column re-draws the blocks from the logits "
                 "down to the one named", fontsize=7)
    save(fig, path, pad=0.2, rect=(0, 0, 1, 1 - 0.4 / height))
