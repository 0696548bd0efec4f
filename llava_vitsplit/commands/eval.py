"""`llava-vitsplit eval ...`: the evaluation command group.

* `eval answer`: run a model over a question file (LLaVA's model_vqa_loader / model_vqa_mmbench);
* `eval merge-answers`: join the per-chunk answer files of a sharded run into one;
* `eval run-name`: name a model's answers folder so that two models' folders cannot collide;
* `eval score-pope|score-vqav2|score-mmbench`: score LLaVA-format answer files (LLaVA's eval scripts,
  as subcommands) and write the VQAv2/MMBench submission files;
* `eval export-data`: copy a benchmark from the Hub (or a local snapshot) into the local parquet
  files that the lmms-eval tasks in eval/ read.
"""

from __future__ import annotations

import json
from pathlib import Path

from .outputs import add_overwrite_flag, check_outputs


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="benchmark evaluation: answer files, scoring, local benchmark data"
    )
    eval_subparsers = parser.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND", required=True)
    _register_scoring(eval_subparsers)
    _register_merge_answers(eval_subparsers)
    _register_run_name(eval_subparsers)
    _register_answer(eval_subparsers)
    _register_export_data(eval_subparsers)


def _register_answer(subparsers) -> None:
    parser = subparsers.add_parser(
        "answer",
        help="answer a question file (LLaVA JSONL, or MMBench .tsv/.parquet) into an answers JSONL",
        description="Batched, shardable (--num-chunks/--chunk-idx) and resumable: rerunning with the same "
        "--answers-file skips the questions already answered. Each answer records the model's fingerprint and the "
        "generation settings; resuming a file written by another model or with other settings is refused.",
    )
    parser.add_argument("--model-path", required=True, help="checkpoint folder")
    parser.add_argument("--model-base", help="base model for LoRA or projector-only checkpoints")
    parser.add_argument(
        "--question-file", required=True, help="LLaVA question JSONL, or MMBench .tsv/.parquet"
    )
    parser.add_argument("--image-folder", help="folder the JSONL's image paths are relative to")
    parser.add_argument("--answers-file", required=True, help="answers JSONL (appended to, resumed)")
    parser.add_argument("--conv-mode", default="vicuna_v1", help="conversation template (default vicuna_v1)")
    parser.add_argument("--num-chunks", type=int, default=1, help="split the questions into this many chunks")
    parser.add_argument("--chunk-idx", type=int, default=0, help="the chunk this process answers")
    parser.add_argument("--batch-size", type=int, default=8, help="questions per generate call")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (LLaVA's eval setting)")
    parser.add_argument("--top-p", "--top_p", dest="top_p", type=float, default=None)
    parser.add_argument("--num-beams", "--num_beams", dest="num_beams", type=int, default=1)
    parser.add_argument("--max-new-tokens", "--max_new_tokens", dest="max_new_tokens", type=int, default=128)
    parser.add_argument(
        "--device", default="cuda", help="cuda (falls back to cpu without a GPU), cuda:1, cpu"
    )
    parser.add_argument(
        "--dtype", default="auto", help="auto (bf16/fp16 on GPU, fp32 on CPU), bfloat16, float16, float32"
    )
    parser.add_argument(
        "--model-id", help="model_id written in the answers (default: the checkpoint folder's name)"
    )
    parser.set_defaults(func=run_answer)


def run_answer(args) -> int:
    from llava_vitsplit.eval.inference import VisualQuestionAnswerer, parse_dtype
    from llava_vitsplit.eval.model_vqa import answer_question_file
    from llava_vitsplit.eval.provenance import AnswerWriterIdentity, settings_record
    from llava_vitsplit.model.generation import decoding_config

    settings = decoding_config(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        num_beams=args.num_beams,
    )
    torch_dtype = parse_dtype(args.dtype)
    # The answers file is appended to (resumed), so it may exist; it must not be an input.
    check_outputs({"--answers-file": args.answers_file}, [args.question_file], overwrite=True)
    generation = {**settings_record(settings), "conv_mode": args.conv_mode}
    writer = AnswerWriterIdentity.of(args.model_path, args.model_base, generation)

    def load_answerer():
        return VisualQuestionAnswerer.from_pretrained(
            args.model_path,
            args.model_base,
            conv_template=args.conv_mode,
            device=args.device,
            torch_dtype=torch_dtype,
        )

    written = answer_question_file(
        load_answerer,
        args.question_file,
        args.answers_file,
        image_folder=args.image_folder,
        num_chunks=args.num_chunks,
        chunk_idx=args.chunk_idx,
        batch_size=args.batch_size,
        settings=settings,
        model_id=args.model_id or Path(args.model_path).resolve().name,
        writer=writer.to_record(),
    )
    print(f"wrote {written} answers to {args.answers_file}")
    return 0


def _register_merge_answers(subparsers) -> None:
    parser = subparsers.add_parser("merge-answers", help="merge per-chunk answer JSONL files")
    parser.add_argument("chunk_files", nargs="+", help="answer files of the chunks")
    parser.add_argument("--output-file", required=True, help="merged answers JSONL")
    parser.add_argument(
        "--question-file", help="order by this question file and require every question answered"
    )
    add_overwrite_flag(parser)
    parser.set_defaults(func=run_merge_answers)


def run_merge_answers(args) -> int:
    from llava_vitsplit.eval.answer_files import merge_answer_files

    check_outputs(
        {"--output-file": args.output_file}, [*args.chunk_files, args.question_file], overwrite=args.overwrite
    )
    count = merge_answer_files(args.chunk_files, args.output_file, args.question_file)
    print(f"merged {count} answers from {len(args.chunk_files)} files into {args.output_file}")
    return 0


def _register_run_name(subparsers) -> None:
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


def _register_scoring(subparsers) -> None:
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


def _register_export_data(subparsers) -> None:
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
    parser.set_defaults(func=run_export_data)


def run_export_data(args) -> int:
    from llava_vitsplit.eval.local_data import export_benchmark, export_path

    check_outputs({"--out": export_path(args.benchmark, args.out)}, [args.source], overwrite=args.overwrite)
    path = export_benchmark(args.benchmark, args.source, args.out, args.config, args.split)
    print(f"wrote {path}")
    return 0
