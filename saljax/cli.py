"""The ``saljax`` command line."""
from __future__ import annotations

import argparse
import json
import sys


def _describe(args) -> int:
    """Build a model, run a generated image through it and print its named blocks."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import saljax.models as sm

    if args.weights and args.width != 1.0:
        raise ValueError("--weights needs --width 1.0: Keras files hold the published widths")
    model = sm.create(args.model, num_classes=args.num_classes, width=args.width)
    variables = (sm.from_keras(args.model, args.weights, num_classes=args.num_classes)
                 if args.weights else sm.init(model, jax.random.key(args.seed)))
    yy, xx = np.mgrid[:args.size, :args.size] / args.size
    image = np.cos(6 * xx) * np.sin(4 * yy)  # a smooth generated test pattern in [-1, 1]
    images = jnp.asarray(np.repeat(image[None, ..., None], 3, -1), jnp.float32)
    blocks = sm.block_names(model)
    logits, acts = jax.jit(lambda v, x: sm.block_activations(model, v, x, blocks))(variables,
                                                                                images)
    rows = [{"block": b, "activation": list(acts[b].shape[1:]),
             "params": int(sum(np.size(p) for p in jax.tree.leaves(variables["params"][b])))}
            for b in blocks]
    report = {"model": args.model, "width": args.width, "size": args.size,
              "logits": np.asarray(logits[0]).round(6).tolist(), "blocks": rows}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{args.model} (width {args.width}) on a {args.size}x{args.size} generated image: "
              f"logits {report['logits']}")
        print(f"{'block':<14}{'activation':>20}{'params':>12}")
        for r in rows:
            print(f"{r['block']:<14}{'x'.join(map(str, r['activation'])):>20}{r['params']:>12,}")
    return 0


def _bench(args, overrides) -> int:
    from saljax import bench
    from saljax.config import load

    config = load(args.config, overrides)
    bench.run(config, args.workdir)
    print(f"wrote {args.workdir}/bench.json and bench.md")
    return 0


def _data_build(args) -> int:
    from saljax import data

    if args.name == "synthetic_cxr":
        counts = (("train", args.train), ("val", args.val), ("test", args.test))
        path = data.build(args.name, args.data_dir, size=args.size, seed=args.seed,
                          counts=counts, marker=args.marker)
    else:
        path = data.build(args.name, args.data_dir, manual_dir=args.manual_dir, size=args.size,
                          split_seed=args.split_seed, splits_csv=args.splits_csv,
                          classes=args.classes, box_raster=args.box_raster,
                          rebuild=args.rebuild)
    splits = data.open_splits(path)
    print(f"built {args.name} at {path}: "
          + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    return 0


def _match_samples(args) -> int:
    from saljax import data, files
    from saljax.data import samples

    rows = samples.match(args.samples, data.open_splits(args.data_path))
    files.write_csv(args.out, [{"sample": r["sample"], "Image_ID": r["id"], "split": r["split"],
                                "correlation": round(r["correlation"], 5),
                                "runner_up": round(r["runner_up"], 5)} for r in rows])
    elsewhere = [f"{r['sample']}.npy ({r['split']})" for r in rows if r["split"] != "test"]
    print(f"matched {len(rows)} samples of {args.samples}; their ids, in order, in {args.out} "
          "(use it as --config.eval_ids)")
    if elsewhere:
        print(f"note: {len(elsewhere)} samples are not test images: {', '.join(elsewhere[:5])}")
    return 0


def _train(args, overrides) -> int:
    from saljax.training import classifier as train
    from saljax.config import load

    config = load(args.config, overrides)
    result = train.train(config, args.workdir)
    for seed, info in result.items():
        print(f"seed {seed}: best validation AUC {info['val_auc']:.3f} at epoch {info['epoch']}"
              f" -> {info['path']}")
    return 0


def _compilation_cache() -> None:
    """Keep compiled programs across runs (a resumed or repeated study skips most compiling),
    unless the user chose a cache directory (JAX_COMPILATION_CACHE_DIR)."""
    import os

    import jax

    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        jax.config.update("jax_compilation_cache_dir",
                          os.path.join(os.path.expanduser("~"), ".cache", "saljax", "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def _stop_on_interrupt(workdir: str) -> None:
    """Ctrl-C (or SIGTERM) stops a study within a second: a one-line message, no worker
    process, no temporary file of this process left; every finished unit is kept, so the same
    command resumes. (Threads in the middle of a compiled computation cannot be stopped from
    Python, so the process exits without waiting for them.)"""
    import os
    import signal

    from saljax import files
    from saljax.data.build import remove_incomplete
    from saljax.saliency import segment_worker
    from saljax.study.workdir import Workdir

    def stop(signum, frame):
        print("saljax: interrupted; finished work is kept: run the same command to resume",
              file=sys.stderr, flush=True)
        segment_worker.close_all()
        if os.path.isdir(workdir):
            files.remove_temporaries(workdir)
            remove_incomplete(Workdir(workdir).data)
        os._exit(130)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _study(args, overrides) -> int:
    from saljax import report, study
    from saljax.config import load

    config = load(args.config, overrides)
    _stop_on_interrupt(args.workdir)
    _compilation_cache()
    summary = study.run(config, args.workdir, progress=not args.quiet)
    if summary is None:     # another process of a multi-process run: process 0 reports
        print("saljax: this process's map units are done; process 0 writes the results")
        return 0
    path = report.write(args.workdir)
    verdicts = ", ".join(f"{m} {summary[m]['randomization']['verdict_block']['saljax']}"
                         f" / {summary[m]['randomization']['verdict']}"
                         for m in summary["study"]["methods"])
    print(f"randomization verdicts (saljax / the study's rule): {verdicts}")
    print(f"wrote {args.workdir}/summary.json, per-image CSVs, figures/ and {path}")
    return 0


def _report(args) -> int:
    from saljax import report

    if args.compare:
        print(f"wrote {report.compare(args.compare, args.out)}")
    else:
        if not args.workdir:
            raise ValueError("saljax report needs --workdir DIR (or --compare DIR DIR ...)")
        print(f"wrote {report.write(args.workdir)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="saljax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="inspect the classifiers")
    msub = models.add_subparsers(dest="action", required=True)
    d = msub.add_parser("describe", help="named blocks, activation shapes and parameter counts")
    d.add_argument("model", help="inception_v3, densenet121, densenet169 or densenet201")
    d.add_argument("--size", type=int, default=320, help="image side in pixels")
    d.add_argument("--width", type=float, default=1.0, help="channel multiplier")
    d.add_argument("--num-classes", type=int, default=2)
    d.add_argument("--weights", help="a Keras file (.keras, .h5, .weights.h5) to import")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(func=_describe)

    data = sub.add_parser("data", help="datasets")
    dsub = data.add_subparsers(dest="action", required=True)
    db = dsub.add_parser("build", help="build a dataset (array_record, no TensorFlow)")
    db.add_argument("name", help="rsna_pneumonia, siim_pneumothorax, synthetic_cxr or folder_cxr")
    db.add_argument("--data-dir", required=True, help="where built datasets go")
    db.add_argument("--manual-dir", help="the downloaded files (not for synthetic_cxr)")
    db.add_argument("--size", type=int, default=320, help="output side in pixels")
    db.add_argument("--split-seed", type=int, default=0)
    db.add_argument("--splits-csv", help="the study's splits file, relative to --manual-dir")
    db.add_argument("--classes", default="all",   # the values: saljax.data.CLASSES
                    help="rsna_pneumonia: all, or opacity_vs_normal (the study's)")
    db.add_argument("--box-raster", default="centres",   # saljax.data.BOX_RASTERS
                    help="boxes to masks: centres (pixel centres), or corners (the study's)")
    db.add_argument("--rebuild", action="store_true",
                    help="build again when the downloaded files changed since the last build")
    db.add_argument("--seed", type=int, default=0, help="synthetic_cxr: generator seed")
    db.add_argument("--train", type=int, default=1000, help="synthetic_cxr: training images")
    db.add_argument("--val", type=int, default=200)
    db.add_argument("--test", type=int, default=200)
    db.add_argument("--marker", default="none", help="synthetic_cxr: none, random or shortcut")
    db.set_defaults(func=_data_build)
    ms = dsub.add_parser("match-samples", help="find the ids of the study's N.npy sample files "
                         "in a built dataset (writes an eval_ids file)")
    ms.add_argument("--samples", required=True, help="a folder of the study's N.npy samples")
    ms.add_argument("--data-path", required=True, help="a built dataset (saljax data build)")
    ms.add_argument("--out", default="eval_ids.csv", help="the eval_ids CSV to write")
    ms.set_defaults(func=_match_samples)

    t = sub.add_parser("train", help="train replicate classifiers from a config",
                       description="Extra --config.<field>=<value> arguments override the config.")
    t.add_argument("--config", required=True, help="a built-in config's name or a file")
    t.add_argument("--workdir", required=True)
    t.set_defaults(func=_train, takes_overrides=True)

    st = sub.add_parser("study", help="run (or resume) the trustworthiness study",
                        description="Extra --config.<field>=<value> arguments override the "
                                    "config. A killed study resumes from its --workdir.")
    st.add_argument("--config", required=True,
                    help="a built-in config's name (synthetic, tiny, rsna_inception, ...) "
                         "or a file")
    st.add_argument("--workdir", required=True)
    st.add_argument("--quiet", action="store_true", help="no progress bars")
    st.set_defaults(func=_study, takes_overrides=True)

    r = sub.add_parser("report", help="(re)write figures and report.md from a study's results")
    r.add_argument("--workdir", help="a finished study: its figures and report.md again")
    r.add_argument("--compare", nargs="+", metavar="WORKDIR",
                   help="finished studies side by side: the paper's figures and a table of "
                        "every method against the four criteria")
    r.add_argument("--out", default="compare", help="where --compare writes (default: compare)")
    r.set_defaults(func=_report)

    b = sub.add_parser("bench", help="saliency throughput against PAIR (and captum)",
                       description="Extra --config.<field>=<value> arguments override the config.")
    b.add_argument("--config", default="bench",
                   help="a built-in config's name (bench, bench_gpu, bench_metrics) or a file")
    b.add_argument("--workdir", required=True)
    b.set_defaults(func=_bench, takes_overrides=True)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if getattr(args, "takes_overrides", False):
            return args.func(args, extra)
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"saljax: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
