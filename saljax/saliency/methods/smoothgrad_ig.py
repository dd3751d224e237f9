"""SmoothGrad around Integrated Gradients (PAIR's ``IntegratedGradients.GetSmoothedMask``): IG
of ``nsamples`` noisy copies of the image (each path ends at its noisy copy), then the mean of
their squares (``magnitude``) or of the maps, [B, H, W, C]."""
from saljax.saliency.augment import Noise, Path
from saljax.saliency.method import Method, count, finite, flag, nonnegative


def plan(hp):
    return Noise(Path(hp["x_steps"], hp["baseline"]), hp["nsamples"], hp["stdev_spread"])


def finish(passes, hp):
    moments = passes.plan(plan(hp))
    return moments.mean_square if hp["magnitude"] else moments.mean


METHOD = Method(
    name="smoothgrad_ig",
    hparams={"stdev_spread": nonnegative(0.15), "nsamples": count(25), "magnitude": flag(True),
             "x_steps": count(25), "baseline": finite(0.0)},
    plan=plan,
    finish=finish,
    stochastic=True,
)
