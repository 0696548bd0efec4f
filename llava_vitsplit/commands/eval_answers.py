"""`eval merge-answers`: join the per-chunk answer files of a sharded run into one."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("merge-answers", help="merge per-chunk answer JSONL files")
    parser.add_argument("chunk_files", nargs="+", help="answer files of the chunks")
    parser.add_argument("--output-file", required=True, help="merged answers JSONL")
    parser.add_argument(
        "--question-file", help="order by this question file and require every question answered"
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from llava_vitsplit.eval.answer_files import merge_answer_files

    count = merge_answer_files(args.chunk_files, args.output_file, args.question_file)
    print(f"merged {count} answers from {len(args.chunk_files)} files into {args.output_file}")
    return 0
