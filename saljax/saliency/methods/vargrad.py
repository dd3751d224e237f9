"""VarGrad (Adebayo et al., 2018): the variance of the gradient over SmoothGrad's noisy copies
(the same samples as SmoothGrad with the same noise settings), [B, H, W, C]."""
from saljax.saliency.augment import Gradient, Noise
from saljax.saliency.method import Method, count, nonnegative


def plan(hp):
    return Noise(Gradient(), hp["nsamples"], hp["stdev_spread"])


def finish(passes, hp):
    moments = passes.plan(plan(hp))
    return moments.mean_square - moments.mean * moments.mean


METHOD = Method(
    name="vargrad",
    hparams={"stdev_spread": nonnegative(0.15), "nsamples": count(25)},
    plan=plan,
    finish=finish,
    stochastic=True,
)
