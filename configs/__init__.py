"""Built-in configs: Python modules whose ``get_config()`` returns an ``ml_collections``
ConfigDict, each overriding a shared default (``saljax.protocol.default_config`` for studies,
``bench`` for benchmarks) or another config by importing it, as big_vision's configs do.

Pass one by name (``--config synthetic``) or any config file by path (``--config my.py``), and
override fields with ``--config.<field>=<value>``:

* ``synthetic``: the README's main job, the whole study on built-in synthetic X-rays (CPU-sized);
* ``tiny``: a smoke test of every stage (the test suite and the notebook use it);
* ``folder``: your own X-rays (a folder and a ``labels.csv``) at 224 px, CPU-sized;
  ``folder_gpu``: the study's full protocol on them at 320 px;
* ``rsna_inception``, ``siim_inception``: the study's protocol, step for step, at 320 px on the
  Kaggle data (docs/PROTOCOL.md);
* ``synthetic_paper``, ``tiny_paper``: the synthetic and tiny studies under that protocol;
* ``midl_label_randomization``: models trained on permuted labels against the true-label ones
  (MIDL 2020);
* ``bench`` (``saljax bench``'s default), ``bench_gpu``, ``bench_metrics``: throughput.
"""
