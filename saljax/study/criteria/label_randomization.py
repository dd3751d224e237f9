"""The MIDL 2020 comparison (Adebayo et al.'s data randomization test): maps of models trained
on permuted labels against maps of the true-label models, on the same evaluation images.

Per method and image: SSIM between the trained maps of a permuted-label model and of the
true-label replicate of the same seed (or the first replicate). A method whose maps of a model
that learned nothing stay more alike than two unrelated images' maps (the random-pair pass line
of the true-label models) reflects the image, not what the model learned: "fail".
saljax's verdict (``verdict_block``): pass when the mean SSIM is surely below the true-label
models' random-pair line, fail when surely above (bootstrap over model pairs, images and the
line's pairs; Holm over methods). A pair with a collapsed map is left out
(``collapsed_maps="exclude"``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from saljax.study import statistics, verdict as verdicts
from saljax.study.criteria.agreement import pair_ssim
from saljax.study.criteria.collapsed import collapsed
from saljax.study.criteria.randomization import line_pairs
from saljax.study.criteria.criterion import Criterion, Entry
from saljax.study.criteria.render import ci, fmt


@dataclasses.dataclass
class LabelResults:
    """Per-image SSIM ``{(method, true model id, permuted model id): [N]}`` (NaN: a collapsed
    map, left out) and each true-label model's random pairs ``{(method, model id): [pairs]}``."""
    ids: tuple
    pairs: dict
    lines: dict = dataclasses.field(default_factory=dict)

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


def evaluate(study) -> LabelResults | None:
    """SSIM of the first ``n_eval`` images' trained maps of each permuted-label model against
    its true-label replicate's; None without permuted-label models."""
    permuted = [m for m in study.models if m.permuted]
    if not permuted:
        return None
    store, n_eval, out, lines, config = study.store, study.n_eval, {}, {}, study.config
    exclude = config.collapsed_maps == "exclude"
    index = {m.id: k for k, m in enumerate(study.classifiers)}
    for a, b in pairs_of(study.classifiers, permuted):
        for method in study.methods:
            ga, gb = (store.gray(x, "trained", method, n_eval) for x in (a, b))
            v = pair_ssim(ga, gb, study.ssim).astype(np.float64)
            out[(method, a, b)] = (np.where(collapsed(ga) | collapsed(gb), np.nan, v)
                                   if exclude else v)
            if (method, a) not in lines:    # the randomization criterion's pairs of model a
                lines[(method, a)] = line_pairs(config, ga, index[a], study.ssim)
    return LabelResults(tuple(study.data.images.ids[:n_eval]), out, lines)


def summarize(results: LabelResults, method: str, pass_line: float, boot: dict) -> dict:
    """The ``label_randomization`` entry of ``method``: the SSIM per image (mean over the
    permuted-label models), its mean and bootstrap CI, the pass line and the verdict ("pass"
    when the mean is below the line)."""
    v = statistics.mean_over_models([s for (m, _, _), s in results.pairs.items() if m == method])
    mean = float(np.nanmean(v))
    verdict = "undetermined" if not np.isfinite(mean) else "pass" if mean < pass_line else "fail"
    return {"ssim_mean": mean, "ssim": statistics.summarize(v, **boot), "pass_line": pass_line,
            "verdict": verdict, "wilcoxon_vs_pass_line": statistics.wilcoxon(v, pass_line)}


def _summarize(results, study, summary) -> Entry:
    """Against each method's randomization pass line (its entry in ``summary``)."""
    if results is None:
        return Entry()
    entries = {m: summarize(results, m, summary[m]["randomization"]["pass_line"], study.boot)
               for m in study.methods}
    tests = {}
    for m in study.methods:
        keys = [k for k in results.pairs if k[0] == m]
        tests[m] = statistics.difference(
            np.stack([results.pairs[k] for k in keys]),
            np.stack([results.lines[(m, a)] for a in dict.fromkeys(k[1] for k in keys)]),
            shared_replicates=False, **study.boot)
    blocks = verdicts.judge(
        tests, "label randomization", "below", study.config.verdicts.alpha,
        "pass when the mean SSIM to the true-label models' maps is below their random-pair "
        "line, fail when above (bootstrap over model pairs, images and pairs; Holm over "
        "methods)",
        {m: e["verdict"] for m, e in entries.items() if e["verdict"] != "undetermined"})
    for m, e in entries.items():
        e["verdict_block"] = blocks[m]
    return Entry(methods={m: {"label_randomization": e} for m, e in entries.items()})


def section(summary, methods) -> list[str]:
    """The MIDL comparison, when the study trained models on permuted labels."""
    if "label_randomization" not in summary[methods[0]]:
        return []
    lines = ["", "## Label randomization (MIDL 2020)", "",
             "SSIM between the maps of models trained on permuted labels and of the true-label "
             "models, on the same images; a method passes when it is below the random-pair "
             "pass line.", "",
             "| method | SSIM to the true-label maps (95% CI) | pass line | verdict |",
             "|---|---|---|---|"]
    for m in methods:
        e = summary[m]["label_randomization"]
        lines.append(f"| {m} | {ci(e['ssim'])} | {fmt(e['pass_line'])} | {e['verdict']} |")
    return lines


CRITERION = Criterion(
    name="label_randomization", evaluate=evaluate,
    tables=lambda r: {} if r is None else {"label_randomization.csv": r.rows()},
    summarize=_summarize, section=section)
