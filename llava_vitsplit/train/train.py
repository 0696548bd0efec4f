"""`python -m llava_vitsplit.train ...`: one LLaVA training stage with the HF Trainer.

Rerunning the same command after an interruption resumes from the latest complete checkpoint in
`--output_dir` (or from `--resume_from_checkpoint PATH`); the run's arguments are recorded there
(`run_arguments.json`) and a rerun with other arguments is refused with the differences. At the end the output folder opens with `load_pretrained_model` (stage 2), holds
the projector alone (stage 1), or the LoRA adapters (`llava-vitsplit merge-lora` merges them).
"""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import transformers

from llava_vitsplit.data.collator import LlavaDataCollator
from llava_vitsplit.data.conversation import get_template
from llava_vitsplit.data.issues import DataIssueLog, summarize, write_summary
from llava_vitsplit.data.llava_dataset import LazySupervisedDataset
from llava_vitsplit.model.feature_cache import VisionFeatureCache

from .arguments import ModelArguments, TrainingArguments, parse_arguments
from .model_setup import build_model, configure_trainable, fit_model_max_length, trainable_parameter_report
from .run_record import RUN_ARGUMENTS_FILE, RecordInCheckpoints, RunArguments, check_resume, resume_checkpoint
from .trainer import LlavaTrainer

logger = logging.getLogger("llava_vitsplit.train")

DATA_ISSUES_DIR = "data_issues"
DATA_ISSUES_FILE = "data_issues.json"


def check_combination(model_args: ModelArguments, training_args: TrainingArguments) -> None:
    """Flags that are valid alone but not together."""
    if model_args.tune_mm_mlp_adapter and training_args.lora_enable:
        raise ValueError("--lora_enable is for stage 2; stage 1 (--tune_mm_mlp_adapter) trains only the projector")
    if model_args.tune_mm_mlp_adapter and model_args.version != "plain":
        logger.warning("stage 1 with --version %s: LLaVA pretrains with 'plain'", model_args.version)
    if training_args.vision_feature_cache and training_args.deepspeed and training_args.hf_deepspeed_config.is_zero3():
        # Ranks that read the cache would skip the tower's parameter gathers that the others wait in.
        raise ValueError("--vision_feature_cache needs the whole tower on every rank: use it with ZeRO-2, not ZeRO-3")
    if not model_args.tune_mm_mlp_adapter and not model_args.pretrain_mm_mlp_adapter:
        logger.warning("stage 2 without --pretrain_mm_mlp_adapter: the projector starts untrained")


@dataclass(frozen=True)
class SingleImage:
    """One PIL image -> `(3, H, W)` with the processor's geometry; picklable for dataloader workers."""

    processor: object

    def __call__(self, image):
        return self.processor.process_images([image])[0]


def run(argv: list[str] | None = None) -> Path:
    model_args, data_args, training_args = parse_arguments(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    check_combination(model_args, training_args)
    if training_args.activation_checkpointing and not training_args.activation_checkpointing_kwargs:
        # Non-reentrant checkpointing lets gradients reach the projector through frozen LLM layers.
        training_args.activation_checkpointing_kwargs = {"use_reentrant": False}
    output_dir = Path(training_args.output_dir)
    run_arguments = RunArguments.from_arguments(model_args, data_args, training_args)
    resume_from = resume_checkpoint(output_dir, training_args.resume_from_checkpoint)
    check_resume(run_arguments, output_dir, resume_from, training_args.allow_changed_args)
    transformers.set_seed(training_args.seed)

    model, processor, spec = build_model(model_args, training_args)
    fit_model_max_length(training_args, model.config.text_config, model_args.model_name_or_path)
    if training_args.should_save:
        run_arguments.save(output_dir)
    processor.image_aspect_ratio = data_args.image_aspect_ratio  # saved with it: inference sees what training saw
    cache = VisionFeatureCache(training_args.vision_feature_cache, model.model.vision_tower) if (
        training_args.vision_feature_cache
    ) else None
    model.model.vision_feature_cache = cache
    model = configure_trainable(model, model_args, training_args)
    logger.info(trainable_parameter_report(model))

    issues_dir = output_dir / DATA_ISSUES_DIR
    with training_args.main_process_first(desc="reading the training data"):
        if resume_from is None and training_args.should_save and issues_dir.exists():
            shutil.rmtree(issues_dir)  # a fresh run reports only its own problems
        tokenizer = processor.tokenizer
        config = model.config
        dataset = LazySupervisedDataset(
            data_args.data_path,
            tokenizer,
            get_template(model_args.version),
            SingleImage(processor),
            image_token_id=config.image_token_id,
            image_seq_length=config.image_seq_length,
            image_folder=data_args.image_folder,
            model_max_length=training_args.model_max_length,
            skip_bad_records=data_args.skip_bad_records,
            issue_log=DataIssueLog(issues_dir),
            progress=training_args.should_log,
        )

    trainer = LlavaTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=LlavaDataCollator(tokenizer.pad_token_id, padding_free=training_args.padding_free),  # from_parts sets it (LLaVA: UNK)
        processing_class=processor,
        projector_only=model_args.tune_mm_mlp_adapter,
        callbacks=[RecordInCheckpoints(output_dir / RUN_ARGUMENTS_FILE)],
    )
    if training_args.should_log:
        logger.info(
            "%d samples; %d process(es) x %d per device x %d accumulation = global batch %d",
            len(dataset), training_args.world_size, training_args.per_device_train_batch_size,
            training_args.gradient_accumulation_steps,
            training_args.world_size * training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps,
        )
    if resume_from is not None:
        logger.info("resuming from %s", resume_from)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if cache is not None:
        logger.info("vision feature cache %s: %d images read, %d computed", cache.root, cache.hits, cache.misses)
    trainer.save_model(str(output_dir))
    trainer.save_state()  # trainer_state.json: the loss log of the whole run
    trainer.accelerator.wait_for_everyone()
    if training_args.should_save:
        spec.save(output_dir)
        if training_args.lora_enable:  # the adapters' base: config.json lets tools read the model's shape
            model.get_base_model().config.save_pretrained(output_dir)
        report_data_issues(issues_dir, output_dir / DATA_ISSUES_FILE)
    return output_dir


def report_data_issues(issues_dir: Path, summary_path: Path) -> None:
    summary = summarize(DataIssueLog(issues_dir).issues() if issues_dir.exists() else [])
    write_summary(summary, summary_path)
    message = summary.format()
    if summary.skipped or summary.truncated:
        logger.warning("data report (also in %s):\n%s", summary_path, message)
    else:
        logger.info("data report: %s", message)


def main(argv: list[str] | None = None) -> int:
    run(sys.argv[1:] if argv is None else argv)
    return 0
