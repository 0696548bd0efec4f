"""`llava-vitsplit heldout-check`: a trained model answers the held-out scene questions; print the scores."""

from __future__ import annotations

import argparse

from .outputs import add_overwrite_flag, check_outputs


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "heldout-check",
        help="score a trained model on the held-out scene questions (accuracy per type vs chance)",
        description="Answer every question of heldout.json (made by make-scenes) with greedy decoding "
        "and print the accuracy per question type next to chance and the majority answer. Predictions and "
        "scores are written to --output.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model-path", required=True, help="a stage-2 output folder (or a merged LoRA model)")
    parser.add_argument("--data", default="playground/data/scenes", help="the scenes folder (images + heldout.json)")
    parser.add_argument("--version", default="v1", help="conversation template the model was fine-tuned with")
    parser.add_argument("--batch-size", type=int, default=16, help="questions per generate call")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="answer length limit")
    parser.add_argument(
        "--dtype", default="float32",
        help="weights' dtype for answering: float32, or bfloat16 (about twice as fast on a CPU with bf16 "
        "instructions; the quick start trains under bf16 autocast, so its matrix products already ran in bf16)",
    )
    parser.add_argument("--output", help="JSON file for predictions and scores (default: MODEL_PATH/heldout_results.json)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overwrite_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from dataclasses import asdict
    from pathlib import Path

    from llava_vitsplit.eval.inference import parse_dtype
    from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration, LlavaViTSplitProcessor
    from llava_vitsplit.quickstart.heldout import answer_questions
    from llava_vitsplit.quickstart.scene_dataset import HELDOUT_FILE, load_heldout
    from llava_vitsplit.quickstart.scene_scoring import format_score_table, score_predictions

    if args.batch_size < 1 or args.max_new_tokens < 1:
        raise SystemExit("--batch-size and --max-new-tokens must be positive")
    try:
        dtype = parse_dtype(args.dtype)
    except ValueError as error:
        raise SystemExit(f"--dtype: {error}") from None
    model_path, data = Path(args.model_path), Path(args.data)
    output = Path(args.output) if args.output else model_path / "heldout_results.json"
    check_outputs({"--output": output}, [data / HELDOUT_FILE], overwrite=args.overwrite)
    heldout = load_heldout(data / HELDOUT_FILE)
    model = LlavaViTSplitForConditionalGeneration.from_pretrained(model_path, dtype=dtype).eval()
    processor = LlavaViTSplitProcessor.from_pretrained(model_path)
    start = time.perf_counter()
    predictions = answer_questions(
        model, processor, heldout, data, version=args.version, batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens, progress=not args.quiet,
    )
    seconds = time.perf_counter() - start
    report = score_predictions(heldout, predictions)
    print(f"{len(predictions)} held-out questions answered in {seconds:.0f} s by {model_path}")
    print(format_score_table(report))
    output.write_text(
        json.dumps(
            {
                "model_path": str(model_path),
                "scores": [
                    {**asdict(row), "accuracy": row.accuracy} for row in (*report.per_type, report.overall)
                ],
                "predictions": predictions,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"predictions and scores: {output}")
    return 0
