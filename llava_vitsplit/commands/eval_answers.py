"""`eval merge-answers`: join the per-chunk answer files of a sharded run into one; `eval run-name`:
name a model's answers folder so that two models' folders cannot collide."""

from __future__ import annotations

from .outputs import add_overwrite_flag, check_outputs


def register(subparsers) -> None:
    parser = subparsers.add_parser("merge-answers", help="merge per-chunk answer JSONL files")
    parser.add_argument("chunk_files", nargs="+", help="answer files of the chunks")
    parser.add_argument("--output-file", required=True, help="merged answers JSONL")
    parser.add_argument(
        "--question-file", help="order by this question file and require every question answered"
    )
    add_overwrite_flag(parser)
    parser.set_defaults(func=run)
    register_run_name(subparsers)


def run(args) -> int:
    from llava_vitsplit.eval.answer_files import merge_answer_files

    check_outputs(
        {"--output-file": args.output_file}, [*args.chunk_files, args.question_file], overwrite=args.overwrite
    )
    count = merge_answer_files(args.chunk_files, args.output_file, args.question_file)
    print(f"merged {count} answers from {len(args.chunk_files)} files into {args.output_file}")
    return 0


def register_run_name(subparsers) -> None:
    parser = subparsers.add_parser(
        "run-name",
        help="print a name for a model's answers folder: the folder's name and its fingerprint",
        description="Two checkpoints called final/ or checkpoint-1000/ get different names; the same model "
        "(even copied elsewhere) keeps its name, so a rerun resumes its own answers.",
    )
    parser.add_argument("--model-path", required=True, help="checkpoint folder")
    parser.add_argument("--model-base", help="base model for LoRA or projector-only checkpoints")
    parser.set_defaults(func=run_name)


def run_name(args) -> int:
    from llava_vitsplit.eval.provenance import answers_folder_name

    print(answers_folder_name(args.model_path, args.model_base))
    return 0
