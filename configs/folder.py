"""Your own chest X-rays: a folder of images with a ``labels.csv`` (``saljax.data.folder_cxr``),
explained and judged with CPU-sized models at 224 px.

    saljax study --config folder --config.manual_dir=<folder> --workdir runs/mine

``labels.csv`` has ``path`` (PNG, JPEG or DICOM, relative to the folder) and ``label`` (0/1),
optionally ``split`` (train/val/test) and ``boxes`` or ``mask_path`` (then utility is scored and
a U-Net baseline trained; without them, utility is skipped and the report says why). Two
InceptionV3 replicates and a DenseNet121, narrow and trained from scratch, the synthetic
config's method settings; GradCAM at each architecture's last block (InceptionV3's mixed10 is
5 x 5 at 224 px). The known-truth stage needs the synthetic data and is off. The time grows with
the training images times the epochs, and with the test positives mapped (up to
``eval_images`` and ``utility_images``); see the README. ``folder_gpu`` is the study's full
protocol on the same folder.
"""
import ml_collections

from saljax.configs import synthetic


def get_config():
    c = synthetic.get_config()
    c.dataset = "folder_cxr"
    c.size = 224
    c.known_truth.enabled = False
    c.arch_hparams = ml_collections.ConfigDict()   # synthetic's GradCAM at mixed7 is for 96 px
    # a few hundred images: batches of 16 and 12 epochs (with fewer, the narrow models trained
    # from scratch stay near chance on such folders)
    c.train.update(dict(batch_size=16, epochs=12, checkpoint_every=25, eval_batch_size=32))
    c.models = [{"name": "inception_v3", "width": 0.25, "seeds": (0, 1)},
                {"name": "densenet121", "width": 0.125, "seeds": (0,)}]
    c.segmentation.update(dict(width=0.5, seeds=(0, 1), epochs=4, batch_size=16))
    c.detection.update(dict(anchor_scale=4.0))     # the paper's anchors (synthetic's: 96 px)
    # a unit (8 images x 30 passes of the multi-pass methods) in one chunk, as synthetic does
    # for XLA's CPU backend: about 10 GB of memory at 224 px
    c.chunk = 8
    c.max_batch = 256
    return c
