"""Datasets as TFDS builders (array_record, no TensorFlow), read with Grain.

Importing registers the TFDS names ``rsna_pneumonia``, ``siim_pneumothorax``, ``synthetic_cxr``
and ``folder_cxr``. Every example has ``id``, ``image`` (uint8 H x W x 1), ``label`` (0/1) and
``mask`` (uint8 H x W); RSNA, synthetic and folder data also ``boxes`` ([N, 4] x_min, y_min,
x_max, y_max in output pixels).
"""
from saljax.data.build import BUILDERS, build
from saljax.data.common import BOX_RASTERS
from saljax.data.errors import DataError
from saljax.data.loader import (evaluation_batches, image_size, labels, open_splits,
                                training_batches)
from saljax.data.preprocess import SCALINGS, from_symmetric, to_model_input
from saljax.data.rsna import CLASS_SETS
from saljax.data.synthetic_images import SyntheticConfig

CLASSES = tuple(CLASS_SETS)      # config.classes / --classes: which RSNA patients

__all__ = ["build", "BUILDERS", "BOX_RASTERS", "CLASSES", "SCALINGS", "DataError", "open_splits",
           "training_batches", "evaluation_batches", "image_size", "labels", "to_model_input",
           "from_symmetric", "SyntheticConfig"]
