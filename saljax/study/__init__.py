"""The trustworthiness study: utility, randomization, repeatability and reproducibility of
saliency maps (and the criteria of :data:`saljax.study.criteria.CRITERIA`), as a protocol of
resumable steps and an executor. ``run(config, workdir)``; see ``saljax.study.stages``."""
from saljax.protocol import default_config
from saljax.study.stages import run
from saljax.study.runner import ConfigChanged

__all__ = ["run", "default_config", "ConfigChanged"]
