"""Faithfulness with a known answer: does a map show what the model actually uses?

* :func:`reliance`: the change of the explained class's probability when a known region is
  removed by in-distribution infill (necessity: what the model really uses);
* :func:`sufficiency`: whether a known region pasted into an image that lacks it (a marker
  into a negative) makes the model predict the positive class;
* :func:`road`: ROAD's MoRF / LeRF curves of a map with noisy linear imputation.

Both take a model, its variables, images and maps or masks, batched and jitted.
"""
from saljax.faithfulness.reliance import reliance, sufficiency
from saljax.faithfulness.road import removal_masks, road

__all__ = ["reliance", "sufficiency", "road", "removal_masks"]
