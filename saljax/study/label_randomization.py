"""The MIDL 2020 comparison (Adebayo et al.'s data randomization test): maps of models trained
on permuted labels against maps of the true-label models, on the same evaluation images.

Per method and image: SSIM between the trained maps of a permuted-label model and of the
true-label replicate of the same seed (or the first replicate). A method whose maps of a model
that learned nothing stay more alike than two unrelated images' maps (the random-pair pass line
of the true-label models) reflects the image, not what the model learned: "fail".
"""
from __future__ import annotations

import dataclasses

import numpy as np

from saljax.study import statistics
from saljax.study.agreement import pair_ssim


@dataclasses.dataclass
class LabelResults:
    """Per-image SSIM ``{(method, true model id, permuted model id): [N]}``."""
    ids: tuple
    pairs: dict

    def rows(self) -> list[dict]:
        """label_randomization.csv: one row per method, model pair and image."""
        return [{"method": method, "model_true": a, "model_permuted": b, "image": self.ids[j],
                 "ssim": float(v[j])}
                for (method, a, b), v in self.pairs.items() for j in range(len(self.ids))]


def pairs_of(true_models, permuted_models) -> list:
    """(true model id, permuted model id): each permuted model with the true-label replicate
    of its seed, or the first replicate."""
    by_seed = {m.id.rsplit("_seed", 1)[1]: m.id for m in true_models
               if m.arch == permuted_models[0].arch}
    first = next(iter(by_seed.values()))
    return [(by_seed.get(p.id.rsplit("_seed", 1)[1], first), p.id) for p in permuted_models]


def evaluate(store, true_models, permuted_models, methods, n_eval: int, ids,
             ssim_kwargs: dict) -> LabelResults:
    """SSIM of the first ``n_eval`` images' trained maps of each permuted-label model against
    its true-label replicate's."""
    out = {}
    for a, b in pairs_of(true_models, permuted_models):
        for method in methods:
            out[(method, a, b)] = pair_ssim(store.gray(a, "trained", method, n_eval),
                                            store.gray(b, "trained", method, n_eval),
                                            ssim_kwargs)
    return LabelResults(tuple(ids[:n_eval]), out)


def summarize(results: LabelResults, method: str, pass_line: float, boot: dict) -> dict:
    """The ``label_randomization`` entry of ``method``: the SSIM per image (mean over the
    permuted-label models), its mean and bootstrap CI, the pass line and the verdict ("pass"
    when the mean is below the line)."""
    v = statistics.mean_over_models([s for (m, _, _), s in results.pairs.items() if m == method])
    mean = float(np.nanmean(v))
    verdict = "undetermined" if not np.isfinite(mean) else "pass" if mean < pass_line else "fail"
    return {"ssim_mean": mean, "ssim": statistics.summarize(v, **boot), "pass_line": pass_line,
            "verdict": verdict, "wilcoxon_vs_pass_line": statistics.wilcoxon(v, pass_line)}
