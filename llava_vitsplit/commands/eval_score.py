"""`eval score-pope|score-vqav2|score-mmbench`: score LLaVA-format answer files (LLaVA's eval
scripts, as subcommands) and write the VQAv2/MMBench submission files."""

from __future__ import annotations

import json
from pathlib import Path

from .outputs import add_overwrite_flag, check_outputs


def register(subparsers) -> None:
    pope = subparsers.add_parser(
        "score-pope", help="POPE accuracy/precision/recall/F1/yes-ratio per category"
    )
    pope.add_argument("--annotation-dir", required=True, help="folder of coco_pope_<category>.json files")
    pope.add_argument("--question-file", required=True, help="LLaVA question JSONL (with a 'category' field)")
    pope.add_argument("--result-file", required=True, help="answers JSONL")
    pope.add_argument("--allow-missing", action="store_true", help="score the answered questions only")
    pope.add_argument("--metrics-file", help="also write the metrics as JSON here")
    add_overwrite_flag(pope)
    pope.set_defaults(func=run_pope)

    vqav2 = subparsers.add_parser("score-vqav2", help="VQAv2 submission JSON, and accuracy given annotations")
    vqav2.add_argument("--result-file", required=True, help="answers JSONL")
    vqav2.add_argument(
        "--question-file", help="question JSONL listing the submission's questions (test2015 for test-dev)"
    )
    vqav2.add_argument("--output-file", help="submission JSON to write ([{question_id, answer}])")
    vqav2.add_argument(
        "--fill-missing",
        action="store_true",
        help="submit unanswered questions as '' (LLaVA's test-dev upload)",
    )
    vqav2.add_argument(
        "--annotation-file", help="official annotation JSON or Hub-format parquet: report accuracy"
    )
    vqav2.add_argument("--metrics-file", help="also write the metrics as JSON here")
    add_overwrite_flag(vqav2)
    vqav2.set_defaults(func=run_vqav2)

    mmbench = subparsers.add_parser(
        "score-mmbench", help="MMBench submission xlsx, and accuracy when answers are known"
    )
    mmbench.add_argument("--question-file", required=True, help="MMBench .tsv (official) or .parquet (Hub)")
    mmbench.add_argument("--result-file", required=True, help="answers JSONL (question_id = MMBench index)")
    mmbench.add_argument("--output-file", help="submission .xlsx to write")
    mmbench.add_argument(
        "--allow-missing", action="store_true", help="leave unanswered questions blank / unscored"
    )
    mmbench.add_argument("--metrics-file", help="also write the metrics as JSON here")
    add_overwrite_flag(mmbench)
    mmbench.set_defaults(func=run_mmbench)


def _check_outputs(args, *inputs) -> None:
    outputs = {"--metrics-file": args.metrics_file, "--output-file": getattr(args, "output_file", None)}
    check_outputs(outputs, [args.result_file, *inputs], overwrite=args.overwrite)


def _report(metrics: dict, metrics_file: str | None) -> None:
    text = json.dumps(metrics, indent=2)
    print(text)
    if metrics_file:
        Path(metrics_file).parent.mkdir(parents=True, exist_ok=True)
        Path(metrics_file).write_text(text + "\n", encoding="utf-8")


def run_pope(args) -> int:
    from llava_vitsplit.eval.answer_files import answer_texts, read_questions
    from llava_vitsplit.eval.pope import read_pope_annotations, score_pope

    _check_outputs(args, args.question_file)
    questions = read_questions(
        args.question_file, required_fields=("question_id", "image", "text", "category")
    )
    metrics = score_pope(
        answer_texts(args.result_file),
        questions,
        read_pope_annotations(args.annotation_dir),
        args.allow_missing,
    )
    _report(metrics, args.metrics_file)
    return 0


def run_vqav2(args) -> int:
    from llava_vitsplit.eval.answer_files import answer_texts, read_questions
    from llava_vitsplit.eval.vqav2 import read_vqav2_annotations, score_vqav2, write_vqav2_submission

    if not args.output_file and not args.annotation_file:
        raise SystemExit("score-vqav2: give --output-file (submission) and/or --annotation-file (accuracy)")
    _check_outputs(args, args.question_file, args.annotation_file)
    answers = answer_texts(args.result_file)
    metrics = {}
    if args.output_file:
        if not args.question_file:
            raise SystemExit("score-vqav2: --output-file needs --question-file (the questions to submit)")
        question_ids = [
            q["question_id"] for q in read_questions(args.question_file, required_fields=("question_id",))
        ]
        summary = write_vqav2_submission(answers, question_ids, args.output_file, args.fill_missing)
        metrics["submission"] = {
            "path": str(summary.path),
            "questions": summary.num_questions,
            "blank": summary.num_blank,
        }
    if args.annotation_file:
        metrics.update(score_vqav2(answers, read_vqav2_annotations(args.annotation_file)))
    _report(metrics, args.metrics_file)
    return 0


def run_mmbench(args) -> int:
    from llava_vitsplit.eval.answer_files import answer_texts
    from llava_vitsplit.eval.mmbench import read_mmbench_table, score_mmbench, write_mmbench_submission

    _check_outputs(args, args.question_file)
    table = read_mmbench_table(args.question_file)
    answers = {int(index): text for index, text in answer_texts(args.result_file).items()}
    metrics = {}
    if args.output_file:
        metrics["submission"] = str(
            write_mmbench_submission(table, answers, args.output_file, args.allow_missing)
        )
    if "answer" in table.columns and table["answer"].notna().all():
        metrics.update(score_mmbench(table, answers, args.allow_missing))
    elif not args.output_file:
        raise SystemExit("score-mmbench: this split has no answers to score against; give --output-file")
    _report(metrics, args.metrics_file)
    return 0
