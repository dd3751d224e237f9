"""The README's main job: the whole study on built-in synthetic chest X-rays, CPU-sized.

    saljax study --config configs/synthetic.py --workdir runs/synthetic
"""
import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.dataset = "synthetic_cxr"
    c.size = 128
    c.synthetic = ml_collections.ConfigDict(dict(
        seed=0, counts=(("train", 1200), ("val", 200), ("test", 200)), marker="random"))
    c.train = ml_collections.ConfigDict(dict(
        learning_rate=1e-3, batch_size=32, epochs=6, augment=True, checkpoint_every=40,
        eval_batch_size=64))
    c.models = [
        {"name": "inception_v3", "width": 0.25, "seeds": (0, 1)},
        {"name": "densenet121", "width": 0.25, "seeds": (0,)},
    ]
    return c
