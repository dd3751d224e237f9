"""``saljax study``: the whole trustworthiness study, from data to per-image results.

Stages, each resumable (a killed study resumes where it stopped and ends with the same files):

1. **data**: build the dataset (synthetic, or from the user's downloads) once.
2. **models**: train each architecture's replicate classifiers (``saljax.train``, orbax resume)
   and the replicate segmentation U-Nets, or load saved ones.
3. **maps**: every (model, randomization setting, method, chunk of images) unit, written
   atomically (``saljax.study.maps``).
4. **results**: per-image CSVs and ``summary.json`` computed from the map files alone
   (``utility``, ``randomization``, ``agreement``, ``statistics``), and ``examples.npz`` for
   the report's figure of example maps.

The study's images are the test split's positives (a lesion to localize); the first
``eval_images`` of them serve the randomization and agreement criteria, all (or
``utility_images``) the utility criterion.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import jax
import ml_collections
import numpy as np
from tqdm.auto import tqdm

import saljax.models as sm
import saljax.saliency as ss
from saljax.saliency import segment_worker
from saljax import data as sd
from saljax.training import classifier as train_lib
from saljax.training import segmenter as train_segmenter
from saljax.metrics import average_mask
from saljax.models import checkpoint as model_checkpoint
from saljax.parallel import data_mesh, initialize_distributed
from saljax.protocol import method_hparams
from saljax.study import agreement, randomization, statistics, utility
from saljax.study.maps import (MapMaker, Setting, load_maps, method_groups, settings,
                                unit_path)
from saljax import files
from saljax.files import write_npz
from saljax.study.runner import concurrently, guard_config, run_units


# ---------------------------------------------------------------------------------- helpers
def _spread(n: int, k: int, start: int) -> list[int] | None:
    """``k`` integers evenly spread over start..start+n-1 (all when k < 0)."""
    if k < 0:
        return None
    if k == 0:
        return []
    return sorted({int(round(v)) for v in np.linspace(start, start + n - 1, min(k, n))})


def _full_protocol(config, model: dict, models: list[dict]) -> bool:
    """Whether ``model`` gets utility and the randomization sweep (see
    ``randomize_every_architecture``), or only its trained maps for reproducibility."""
    return model["arch"] == models[0]["arch"] or bool(config.randomize_every_architecture)


def _log(progress, msg):
    if progress:
        tqdm.write(msg)


# ---------------------------------------------------------------------------------- stages
def prepare_data(config, workdir: str) -> str:
    if config.data_path:
        return config.data_path
    data_dir = os.path.join(workdir, "data")
    if config.dataset == "synthetic_cxr":
        s = config.synthetic
        options = {k: v for k, v in s.items() if k not in ("seed", "counts")}
        return sd.build("synthetic_cxr", data_dir, size=config.size, seed=s.seed,
                        counts=tuple(tuple(c) for c in s.counts), **options)
    return sd.build(config.dataset, data_dir, manual_dir=config.manual_dir, size=config.size,
                    splits_csv=config.splits_csv or None)


def study_images(splits, limit: int) -> dict:
    """The test split's positives with a non-empty mask, in stored order."""
    batches = sd.evaluation_batches(splits["test"], 64)
    ids, images, masks = [], [], []
    for i in range(len(batches)):
        b = batches[i]
        keep = (b["label"] == 1) & (b["mask"].reshape(len(b["mask"]), -1).max(-1) > 0)
        ids += [x.decode() if isinstance(x, bytes) else str(x) for x in b["id"][keep]]
        images.append(b["image"][keep])
        masks.append(b["mask"][keep].astype(bool))
    images, masks = np.concatenate(images), np.concatenate(masks)
    if limit > 0:
        ids, images, masks = ids[:limit], images[:limit], masks[:limit]
    if len(ids) < 2:
        raise ValueError(f"the test split has {len(ids)} positive images with a lesion mask; "
                         "the study needs at least 2")
    return {"ids": ids, "images": images, "masks": masks}


def training_masks(splits) -> np.ndarray:
    batches = sd.evaluation_batches(splits["train"], 128, keys=("label", "mask"))
    masks = [batches[i]["mask"][batches[i]["label"] == 1] for i in range(len(batches))]
    return np.concatenate(masks).astype(bool)


def plan_models(config, data_path, workdir, progress=True, mesh=None):
    """Every replicate classifier, ``[{id, arch, path}]``, and ``{arch: call}`` training the
    architectures not trained yet (``saljax.train``, orbax resume); loaded ones have no call."""
    names = [spec["name"] for spec in config.models]
    if len(set(names)) != len(names):
        raise ValueError(f"models lists an architecture twice ({names}): give one entry per "
                         "architecture with all its seeds")
    models, trainings = [], {}
    for spec in config.models:
        name, width, seeds = spec["name"], float(spec.get("width", 1.0)), tuple(spec["seeds"])
        paths = spec.get("paths")
        if paths:
            for seed, path in zip(seeds, paths):
                meta = model_checkpoint.describe(path)
                if meta["name"] != name:
                    raise model_checkpoint.CheckpointMismatch(
                        f"{path} holds a {meta['name']}, the config names {name}")
                models.append({"id": f"{name}_seed{seed}", "arch": name, "path": path,
                               "val_auc": meta["metadata"].get("val_auc")})
            continue
        tdir = os.path.join(workdir, "train", name)
        out_dirs = [os.path.join(tdir, "models", f"{name}_seed{s}") for s in seeds]
        if not all(os.path.exists(os.path.join(p, "model.json")) for p in out_dirs):
            tc = ml_collections.ConfigDict(config.train.to_dict())
            overrides = dict(spec.get("train", {}))   # per architecture (e.g. epochs)
            unknown = set(overrides) - set(tc)
            if unknown:
                raise ValueError(f"models entry {name}: unknown train setting(s) "
                                 f"{', '.join(sorted(unknown))}")
            tc.update(overrides)
            tc.model, tc.width, tc.seeds, tc.data_path = name, width, seeds, data_path

            def training(tc=tc, tdir=tdir, name=name, width=width, n=len(seeds)):
                _log(progress, f"training {n} x {name} (width {width:g})")
                train_lib.train(tc, tdir, progress=progress, mesh=mesh)
            trainings[name] = training
        for s, p in zip(seeds, out_dirs):
            models.append({"id": f"{name}_seed{s}", "arch": name, "path": p})
    ids = [m["id"] for m in models]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two models share an id: {ids}")
    return models, trainings


def with_val_auc(models: list[dict]) -> list[dict]:
    """``models`` with each trained model's validation AUC (from its saved metadata)."""
    return [m if "val_auc" in m else
            {**m, "val_auc": model_checkpoint.describe(m["path"])["metadata"].get("val_auc")}
            for m in models]


def plan_segmenters(config, splits, workdir, progress=True):
    """The replicate segmentation U-Nets' paths and a call training them (None when trained)."""
    seeds = tuple(config.segmentation.seeds)
    paths = [os.path.join(workdir, "models", f"unet_seed{s}") for s in seeds]
    if all(os.path.exists(os.path.join(p, "model.json")) for p in paths):
        return paths, None

    def training():
        _log(progress, f"training {len(seeds)} segmentation U-Nets")
        train_segmenter.train(config.segmentation, splits, workdir, progress=progress)
    return paths, training


def _padded_images(config, images) -> np.ndarray:
    """The study images padded (repeating the last) to a whole number of chunks."""
    n, chunk = len(images["ids"]), config.chunk
    padded = -(-n // chunk) * chunk
    a = images["images"]
    return np.concatenate([a, np.repeat(a[-1:], padded - n, 0)]) if n < padded else a


def start_xrai_segments(config, images, progress=True):
    """Start the XRAI segments of the study images in a worker process (host work, once per
    image, shared by every model and setting; a process, because scikit-image holds the GIL and
    would slow the training threads). Returns a call that waits for them: ``{chunk: Segments}``
    padded to one shape (one compiled XRAI program), or ``{}`` when XRAI is not studied. If the
    worker fails, the call computes them itself (with a warning naming the worker's error)."""
    if not any(hp.get("method", m) == "xrai" for m, hp in method_hparams(config).items()):
        return lambda: {}
    imgs, chunk = _padded_images(config, images), config.chunk
    x = np.asarray(sd.to_model_input(imgs))
    n_chunks = len(imgs) // chunk
    tmp = tempfile.mkdtemp(prefix="saljax-xrai-")
    src, dst = os.path.join(tmp, "images.npy"), os.path.join(tmp, "segments.npz")
    np.save(src, x)
    worker = subprocess.Popen([sys.executable, "-m", "saljax.saliency.segment_worker", src, dst,
                               str(chunk)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lock, done = threading.Lock(), {}

    def result() -> dict:
        with lock:
            if not done:
                _, err = worker.communicate()
                if worker.returncode == 0:
                    segments = segment_worker.read(dst, n_chunks)
                else:
                    lines = err.decode(errors="replace").strip().splitlines()
                    why = lines[-1] if lines else f"exit status {worker.returncode}"
                    warnings.warn(f"the XRAI segments worker failed ({why}); computing the "
                                  "segments in this process")
                    segments = segment_worker.chunked(x, chunk, progress)
                shutil.rmtree(tmp, ignore_errors=True)
                k = max(seg.membership.shape[1] for seg in segments)
                a = max(seg.membership.shape[2] for seg in segments)
                done.update({c: ss.xrai.pad_segments(seg, k, a) for c, seg in enumerate(segments)})
            return done
    return result


def plan_maps(config, models, images, workdir, segments, progress=True, share=(0, 1),
              mesh=None):
    """This process's share of the map units (every ``share[1]``-th, from ``share[0]``).

    Returns ``({model_id: [Setting]}, every unit's path, {arch: call})``: each call computes
    the missing units of one architecture's models in turn (loading each model when it starts),
    so an architecture's maps can start as soon as its training ends. ``segments`` is
    :func:`start_xrai_segments`'s call."""
    n_util, n_eval = len(images["ids"]), min(config.eval_images, len(images["ids"]))
    chunk = config.chunk
    imgs = _padded_images(config, images)
    base = jax.random.key(config.seed)
    out, all_paths, k = {}, [], 0
    per_arch: dict[str, list] = {}
    for mi, m in enumerate(models):
        names = sm.block_names(sm.create(m["arch"]))
        if _full_protocol(config, m, models):
            sets = settings(len(names), _spread(len(names), config.cascading_levels, 1),
                            _spread(len(names), config.independent_blocks, 0), n_eval, n_util)
        else:   # reproducibility only: the trained model on the evaluation images
            sets = [Setting("trained", "trained", 0, n_eval)]
        out[m["id"]] = sets
        methods = method_hparams(config, m["arch"])
        mine = []
        for st in sets:
            for group in method_groups(methods):
                for c in range(-(-st.images // chunk)):
                    paths = {label: unit_path(workdir, m["id"], st.name, label, c)
                             for label in group}
                    all_paths += list(paths.values())
                    k += 1
                    if (k - 1) % share[1] == share[0]:
                        mine.append((paths, st, group, c))
        per_arch.setdefault(m["arch"], []).append((mi, m, methods, mine))

    def run_model(mi, m, methods, mine):
        if all(os.path.exists(p) for paths, *_ in mine for p in paths.values()):
            return
        model, variables, _ = model_checkpoint.load(m["path"])
        maker = MapMaker(model, variables, methods, key=jax.random.fold_in(base, mi),
                         max_batch=config.max_batch, randomization=config.randomization,
                         target=config.target, mesh=mesh,
                         max_batch_per_method=dict(config.get("max_batch_per_method", {})))
        run_units([(paths, lambda st=st, group=group, c=c: maker.unit(
            st, group, c, imgs[c * chunk:(c + 1) * chunk], segments().get(c)))
            for paths, st, group, c in mine], f"maps {m['id']}", progress)

    jobs = {arch: (lambda entries=entries: [run_model(*e) for e in entries])
            for arch, entries in per_arch.items()}
    return out, all_paths, jobs


# ---------------------------------------------------------------------------------- results
def compute_results(config, models, model_settings, images, train_masks, segmenters, workdir,
                    progress=True) -> dict:
    methods = list(method_hparams(config))
    ssim_kw = dict(config.ssim)
    n_util, n_eval = len(images["ids"]), min(config.eval_images, len(images["ids"]))
    ids, masks = images["ids"], images["masks"]
    chunk = config.chunk
    gray = lambda mid, st, meth, n, which="gray": load_maps(workdir, mid, st, meth, n, chunk,
                                                            which)
    full = [m for m in models if _full_protocol(config, m, models)]
    last = {m["id"]: [s for s in model_settings[m["id"]] if s.kind == "cascading"][-1].name
            for m in full}

    # --- segmentation baseline maps
    seg_maps = []
    for p in segmenters:
        model, variables, _ = model_checkpoint.load(p)
        predict = train_segmenter.predict_fn(model)
        seg_maps.append(np.concatenate([np.asarray(predict(variables, images["images"][s:s + 64]))
                                        for s in range(0, n_util, 64)]))

    # --- utility
    util_rows = []
    for m in tqdm(full, desc="utility", disable=not progress, mininterval=2.0):
        for meth in methods:
            for state, st in (("trained", "trained"), ("randomized", last[m["id"]])):
                util_rows += utility.rows(meth, m["id"], state, ids,
                                          utility.scores(gray(m["id"], st, meth, n_util), masks))
    avg = np.asarray(average_mask(train_masks)) if len(train_masks) else np.zeros(masks.shape[1:])
    base_util = {"average_mask": utility.scores(avg, masks)}
    util_rows += utility.rows("average_mask", "baseline", "trained", ids, base_util["average_mask"])
    for k, sm_ in enumerate(seg_maps):
        sc = utility.scores(sm_, masks)
        base_util[f"unet_seed{k}"] = sc
        util_rows += utility.rows("segmentation", f"unet_{k}", "trained", ids, sc)
    files.write_csv(os.path.join(workdir, "utility.csv"), util_rows)

    # --- randomization
    rand_rows, line_rows = [], []
    pass_lines = {meth: {} for meth in methods}   # method -> model id -> line
    for mi, m in enumerate(tqdm(full, desc="randomization", disable=not progress,
                                mininterval=2.0)):
        for meth in methods:
            g0 = gray(m["id"], "trained", meth, n_eval)
            s0 = gray(m["id"], "trained", meth, n_eval, "signed")
            line = randomization.pass_line(
                g0, jax.random.fold_in(jax.random.key(config.seed + 1), mi), config.random_pairs,
                ssim_kw)
            pass_lines[meth][m["id"]] = line
            line_rows.append({"method": meth, "model": m["id"], "pass_line": line})
            sets = model_settings[m["id"]]   # every setting's maps against the trained ones,
            sim = randomization.similarity(  # in as few calls as memory allows
                np.concatenate([gray(m["id"], st.name, meth, n_eval) for st in sets]),
                np.concatenate([g0] * len(sets)),
                np.concatenate([gray(m["id"], st.name, meth, n_eval, "signed") for st in sets]),
                np.concatenate([s0] * len(sets)), ssim_kw)
            for i, st in enumerate(sets):
                for j in range(n_eval):
                    rand_rows.append({"method": meth, "model": m["id"], "arch": m["arch"],
                                      "kind": st.kind, "level": st.level, "setting": st.name,
                                      "image": ids[j],
                                      **{k: float(v[i * n_eval + j]) for k, v in sim.items()}})
    files.write_csv(os.path.join(workdir, "randomization.csv"), rand_rows)
    files.write_csv(os.path.join(workdir, "pass_lines.csv"), line_rows)

    # --- repeatability / reproducibility
    agree_rows = []
    pairs = agreement.model_pairs(models)
    for kind, plist in pairs.items():
        for a, b in plist:
            for meth in methods:
                v = agreement.pair_ssim(gray(a, "trained", meth, n_eval),
                                        gray(b, "trained", meth, n_eval), ssim_kw)
                agree_rows += [{"criterion": kind, "method": meth, "model_a": a, "model_b": b,
                                "image": ids[j], "ssim": float(v[j])} for j in range(n_eval)]
    seg_agree = []
    for a in range(len(seg_maps)):
        for b in range(a + 1, len(seg_maps)):
            v = agreement.pair_ssim(seg_maps[a][:n_eval], seg_maps[b][:n_eval], ssim_kw)
            seg_agree.append(v)
            agree_rows += [{"criterion": "baseline", "method": "segmentation",
                            "model_a": f"unet_{a}", "model_b": f"unet_{b}", "image": ids[j],
                            "ssim": float(v[j])} for j in range(n_eval)]
    files.write_csv(os.path.join(workdir, "agreement.csv"), agree_rows)

    summary = _summary(config, models, model_settings, methods, util_rows, rand_rows,
                       pass_lines, agree_rows, base_util, seg_agree, n_util, n_eval)
    files.write_json(os.path.join(workdir, "summary.json"), summary)
    _write_examples(config, models, model_settings, methods, images, workdir)
    return summary


def _per_image(rows, key, **match):
    """Values of ``key`` averaged over models per image (rows matching ``match``): [images]."""
    acc = {}
    for r in rows:
        if all(r[k] == v for k, v in match.items()):
            acc.setdefault(r["image"], []).append(r[key])
    return np.array([np.nanmean(v) if np.isfinite(v).any() else np.nan
                     for v in acc.values()]), list(acc)


def _summary(config, models, model_settings, methods, util_rows, rand_rows, pass_lines,
             agree_rows, base_util, seg_agree, n_util, n_eval) -> dict:
    # a constant map (e.g. a dead randomized network) has a NaN correlation: means skip them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _summary_values(config, models, model_settings, methods, util_rows, rand_rows,
                               pass_lines, agree_rows, base_util, seg_agree, n_util, n_eval)


def _summary_values(config, models, model_settings, methods, util_rows, rand_rows, pass_lines,
                    agree_rows, base_util, seg_agree, n_util, n_eval) -> dict:
    boot = dict(n_boot=config.bootstrap, seed=config.seed)
    primary = models[0]["arch"]
    prim_models = [m for m in models if m["arch"] == primary]
    seg_rep = (np.mean(np.stack(seg_agree), 0) if seg_agree else None)
    out = {"study": {"dataset": config.dataset, "size": config.size, "images_utility": n_util,
                     "images_eval": n_eval, "primary_architecture": primary,
                     "models": models,
                     "verdict_rule": "pass when the mean SSIM of a cascading randomization level "
                                     "falls below the random-pair pass line (the study's "
                                     "'reaches degradation')"},
           "baselines": {"utility": {k: {c: statistics.summarize(v[c], **boot)
                                         for c in utility.COLUMNS}
                                     for k, v in base_util.items()},
                         "segmentation_repeatability": (statistics.summarize(seg_rep, **boot)
                                                        if seg_rep is not None else None)}}
    avg_auprc = base_util["average_mask"]["auprc"]
    for meth in methods:
        entry = {"utility": {"auprc_mean": {}, "auprc": {}, "average_precision_mean": {},
                             "pointing_game_mean": {}, "mass_accuracy_mean": {}}}
        for state in ("trained", "randomized"):
            v, _ = _per_image(util_rows, "auprc", method=meth, state=state)
            entry["utility"]["auprc_mean"][state] = float(np.nanmean(v))
            entry["utility"]["auprc"][state] = statistics.summarize(v, **boot)
            for col in ("average_precision", "pointing_game", "mass_accuracy"):
                w, _ = _per_image(util_rows, col, method=meth, state=state)
                entry["utility"][f"{col}_mean"][state] = float(np.nanmean(w))
        v, _ = _per_image(util_rows, "auprc", method=meth, state="trained")
        entry["utility"]["wilcoxon_vs_average_mask"] = statistics.wilcoxon(v, avg_auprc)
        if "unet_seed0" in base_util:
            entry["utility"]["wilcoxon_vs_segmentation"] = statistics.wilcoxon(
                v, base_util["unet_seed0"]["auprc"])

        # cascading curve of the primary architecture: trained first, then each level
        sets = [s for s in model_settings[prim_models[0]["id"]] if s.kind == "cascading"]
        curve, sds, spear, spear_abs, levels = [], [], [], [], [0]
        for lvl in [0] + [s.level for s in sets]:
            kind = "trained" if lvl == 0 else "cascading"
            per_model = []
            for col, dest in (("ssim", curve), ("spearman", spear), ("spearman_abs", spear_abs)):
                vals = [np.nanmean([r[col] for r in rand_rows if r["method"] == meth and
                                    r["model"] == m["id"] and r["kind"] == kind and
                                    r["level"] == lvl]) for m in prim_models]
                dest.append(float(np.nanmean(vals)))
                if col == "ssim":
                    per_model = vals
            sds.append(float(np.std(per_model, ddof=1)) if len(per_model) > 1 else 0.0)
            if lvl:
                levels.append(lvl)
        names = sm.block_names(sm.create(primary))
        indep = [s for s in model_settings[prim_models[0]["id"]] if s.kind == "independent"]
        indep_curve = [float(np.nanmean([r["ssim"] for r in rand_rows if r["method"] == meth
                                         and r["arch"] == primary and r["kind"] == "independent"
                                         and r["level"] == s.level])) for s in indep]
        line = float(np.mean([pass_lines[meth][m["id"]] for m in prim_models]))
        final, _ = _per_image([r for r in rand_rows if r["arch"] == primary], "ssim",
                              method=meth, kind="cascading", level=levels[-1])
        below = [lvl for lvl, c in zip(levels, curve) if c < line]
        entry["randomization"] = {
            "architecture": primary, "levels": levels,
            "level_blocks": ["trained"] + [names[lvl - 1] for lvl in levels[1:]],
            "cascading_ssim_mean": curve, "cascading_ssim_sd_across_models": sds,
            "cascading_spearman_mean": spear, "cascading_spearman_abs_mean": spear_abs,
            "independent_blocks": [names[s.level] for s in indep],
            "independent_ssim_mean": indep_curve,
            "pass_line": line, "verdict": randomization.verdict(curve[1:], line),
            "first_level_below_pass_line": below[0] if below else None,
            "final_level_below_pass_line": bool(curve[-1] < line),
            "final_level_ssim": statistics.summarize(final, **boot),
            "wilcoxon_final_vs_pass_line": statistics.wilcoxon(final, line)}
        for crit in ("repeatability", "reproducibility"):
            v, _ = _per_image([r for r in agree_rows if r["criterion"] == crit], "ssim",
                              method=meth)
            if v.size == 0:
                entry[crit] = {"ssim_mean": None}
                continue
            entry[crit] = {"ssim_mean": float(np.nanmean(v)), "ssim": statistics.summarize(v, **boot)}
            if seg_rep is not None:
                entry[crit]["wilcoxon_vs_segmentation"] = statistics.wilcoxon(v, seg_rep)
        out[meth] = entry
    return out


def _write_examples(config, models, model_settings, methods, images, workdir) -> None:
    """Maps of the first study image for the report's grid: methods x cascading levels."""
    m = models[0]
    sets = [s for s in model_settings[m["id"]] if s.kind in ("trained", "cascading")]
    maps = np.stack([np.stack([load_maps(workdir, m["id"], s.name, meth, 1, config.chunk)[0]
                               for s in sets]) for meth in methods])
    write_npz(os.path.join(workdir, "examples.npz"), {
        "image": images["images"][0, ..., 0], "mask": images["masks"][0], "maps": maps,
        "methods": np.array(methods), "settings": np.array([s.name for s in sets]),
        "model": np.array(m["id"])})


def _wait_for(paths, what: str, timeout_s: float = 7 * 24 * 3600) -> None:
    """Other processes wait for process 0's files on the shared workdir."""
    start = time.time()
    while not all(os.path.exists(p) for p in paths):
        if time.time() - start > timeout_s:
            raise TimeoutError(f"waited {timeout_s:.0f} s for process 0's {what}")
        time.sleep(5)


def run(config, workdir: str, *, progress: bool = True) -> dict | None:
    """Run (or resume) the study of ``config`` in ``workdir``; returns the summary.

    One process runs a pipeline per architecture (its training, then its maps) concurrently
    with the others and with the U-Nets' training. Several processes (``jax.distributed``; see
    ``launch/``) share one workdir: process 0 builds the data and trains the models while the
    others wait, every process computes its share of the map units (round robin) on its local
    devices, and process 0 computes the results once every unit's file exists. Other processes
    return None.
    """
    initialize_distributed()
    rank, size = jax.process_index(), jax.process_count()
    local = data_mesh(jax.local_devices())
    progress = progress and rank == 0
    if rank == 0:
        guard_config(workdir, config.to_json_best_effort(sort_keys=True))
        data_path = prepare_data(config, workdir)
    else:
        _wait_for([os.path.join(workdir, "config.json")], "config")
        guard_config(workdir, config.to_json_best_effort(sort_keys=True))
        data_path = config.data_path or None
    if rank == 0:
        splits = sd.open_splits(data_path)
        images = study_images(splits, config.utility_images)
        segments = start_xrai_segments(config, images, progress)
        models, trainings = plan_models(config, data_path, workdir, progress, mesh=local)
        segmenters, train_unets = plan_segmenters(config, splits, workdir, progress)
    else:
        _wait_for([os.path.join(workdir, "models.json")], "trained models")
        with open(os.path.join(workdir, "models.json")) as f:
            info = json.load(f)
        data_path, models, segmenters = info["data_path"], info["models"], info["segmenters"]
        splits = sd.open_splits(data_path)
        images = study_images(splits, config.utility_images)
        segments, trainings, train_unets = start_xrai_segments(config, images, False), {}, None
    model_settings, paths, map_jobs = plan_maps(
        config, models, images, workdir, segments, progress, share=(rank, size),
        mesh=local if local.devices.size > 1 else None)
    unets = [train_unets] if train_unets else []
    if size == 1:
        # one pipeline per architecture (train, then its maps) beside the U-Nets' training:
        # on a CPU one stage's compiling and idle time is another's compute
        concurrently([lambda a=a: (trainings.get(a, lambda: None)(), map_jobs[a]())
                      for a in map_jobs] + unets)
    elif rank == 0:   # the other processes wait for the trained models, then share the maps
        concurrently(list(trainings.values()) + unets)
    if rank == 0:
        models = with_val_auc(models)
        files.write_json(os.path.join(workdir, "models.json"),
                    {"data_path": data_path, "models": models, "segmenters": segmenters})
    if size > 1:
        concurrently(list(map_jobs.values()))
    if rank != 0:
        return None
    _wait_for(paths, "map units of the other processes")
    return compute_results(config, models, model_settings, images, training_masks(splits),
                           segmenters, workdir, progress)

