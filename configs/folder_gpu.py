"""The study's full protocol on your own X-rays (a folder and its ``labels.csv``, as for the
``folder`` config), sized for a GPU: the SIIM config's protocol at 320 px, step for step
(docs/PROTOCOL.md): three ImageNet-initialized InceptionV3 replicates and a DenseNet121 at full
width, the study's method settings, every randomization level through mixed1, 100 evaluation
images, U-Nets as the localization baseline where the folder has masks or boxes, and a
class-weighted loss (the share of positives in your data is not known in advance).

    saljax study --config folder_gpu --config.manual_dir=<folder> --workdir runs/mine_gpu

ImageNet initialization reads Keras's no-top files from ``~/.keras/models/`` (nothing is
downloaded; see ``saljax.models.imagenet_weights``); ``--config.train.init_from=''`` trains from
scratch instead.
"""
from saljax.configs import siim_inception


def get_config():
    c = siim_inception.get_config()
    c.dataset = "folder_cxr"
    c.splits_csv = ""      # the CSV's split column, else a seeded hash of each image's path
    return c
