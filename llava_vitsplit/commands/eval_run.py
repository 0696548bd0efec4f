"""`eval answer`: run a model over a question file (LLaVA's model_vqa_loader / model_vqa_mmbench)."""

from __future__ import annotations

from pathlib import Path

from .outputs import check_outputs


def register(subparsers) -> None:
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
    parser.set_defaults(func=run)


def run(args) -> int:
    from llava_vitsplit.eval.inference import GenerationSettings, VisualQuestionAnswerer, parse_dtype
    from llava_vitsplit.eval.model_vqa import answer_question_file
    from llava_vitsplit.eval.provenance import AnswerWriterIdentity, settings_record

    settings = GenerationSettings(
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
