"""A smoke-test study (the test suite and the notebook use it): every stage and output of the
synthetic study on a handful of 75 px images and narrow models, three methods.

    saljax study --config tiny --workdir runs/tiny
"""
from saljax.configs import synthetic


def get_config():
    c = synthetic.get_config()
    c.size = 75
    c.synthetic.counts = (("train", 64), ("val", 16), ("test", 24))
    c.train.update(dict(epochs=1, batch_size=16, checkpoint_every=2, eval_batch_size=16))
    c.models = [{"name": "inception_v3", "width": 0.0625, "seeds": (0, 1)},
                {"name": "densenet121", "width": 0.0625, "seeds": (0,)}]
    c.segmentation.update(dict(width=0.25, epochs=1, batch_size=16))
    c.methods = ["gradient", "gradcam", "guided_backprop"]
    c.eval_images = 4
    c.utility_images = 6
    c.chunk = 4
    c.cascading_levels = 2
    c.independent_blocks = 1
    c.random_pairs = 10
    c.bootstrap = 100
    c.known_truth.update(dict(images=4, road_fractions=(0.25, 0.75), occlusion_size=25,
                              occlusion_stride=25))
    return c
