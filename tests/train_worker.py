"""A training run for tests, as its own process (so that a test can kill it)."""
import sys

from saljax.training import classifier as train


def config(data_path, max_steps=-1):
    c = train.default_config()
    c.data_path = data_path
    c.model, c.width, c.seeds = "inception_v3", 0.0625, (0, 1)
    c.learning_rate, c.bn_momentum = 1e-3, 0.9
    c.batch_size, c.epochs, c.checkpoint_every, c.eval_batch_size = 8, 2, 4, 16
    c.max_steps = max_steps
    return c


if __name__ == "__main__":
    data_path, workdir = sys.argv[1], sys.argv[2]
    train.train(config(data_path), workdir, progress=False)
