"""Faithfulness with a known answer: does a map show what the model actually uses?

* :func:`reliance`: the change of the explained class's probability when a known region is
  removed by in-distribution infill (what the model really uses);
* :func:`road`: ROAD's MoRF / LeRF curves of a map with noisy linear imputation.

Both take a model, its variables, images and maps or masks, batched and jitted.
"""
from saljax.faithfulness.reliance import reliance
from saljax.faithfulness.road import removal_masks, road

__all__ = ["reliance", "road", "removal_masks"]
