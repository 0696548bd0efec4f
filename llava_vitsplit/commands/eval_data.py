"""`eval export-data`: copy a benchmark from the Hub (or a local snapshot) into the local parquet
files that the lmms-eval tasks in eval/ read."""

from __future__ import annotations

from .outputs import add_overwrite_flag, check_outputs


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export-data", help="write a benchmark's Hub data as local parquet for eval/ tasks"
    )
    parser.add_argument("--benchmark", required=True, choices=("pope", "vqav2", "mmbench"))
    parser.add_argument(
        "--from", dest="source", required=True,
        help="Hub dataset id (needs network), a local snapshot of the Hub repository, or a save_to_disk folder",
    )  # fmt: skip
    parser.add_argument("--out", required=True, help="data root; the eval/ task YAMLs read eval/data")
    parser.add_argument(
        "--config", help="dataset config, if not the Hub's (pope/vqav2: default, mmbench: en)"
    )
    parser.add_argument(
        "--split", help="split to copy, if not the Hub's (pope: test, vqav2: validation, mmbench: dev)"
    )
    add_overwrite_flag(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from llava_vitsplit.eval.local_data import export_benchmark, export_path

    check_outputs({"--out": export_path(args.benchmark, args.out)}, [args.source], overwrite=args.overwrite)
    path = export_benchmark(args.benchmark, args.source, args.out, args.config, args.split)
    print(f"wrote {path}")
    return 0
