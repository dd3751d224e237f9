"""SmoothGrad (Smilkov et al., 2017; PAIR's ``GetSmoothedMask``): the mean squared gradient
(``magnitude``) or the mean gradient over ``nsamples`` noisy copies, [B, H, W, C]."""
from saljax.saliency.augment import Gradient, Noise
from saljax.saliency.method import Method, count, flag, nonnegative


def plan(hp):
    return Noise(Gradient(), hp["nsamples"], hp["stdev_spread"])


def finish(passes, hp):
    moments = passes.plan(plan(hp))
    return moments.mean_square if hp["magnitude"] else moments.mean


METHOD = Method(
    name="smoothgrad",
    hparams={"stdev_spread": nonnegative(0.15), "nsamples": count(25), "magnitude": flag(True)},
    plan=plan,
    finish=finish,
    stochastic=True,
)
