"""The trustworthiness study: utility, randomization, repeatability and reproducibility of
saliency maps, as resumable units of work. ``run(config, workdir)``; see ``pipeline``."""
from saljax.protocol import default_config
from saljax.study.pipeline import run
from saljax.study.runner import ConfigChanged

__all__ = ["run", "default_config", "ConfigChanged"]
