"""`llava-vitsplit dense train|eval|predict|sample`: ViT-Split dense tasks (`dense.tasks`) on a frozen backbone.

Multi-GPU / multi-node / DeepSpeed: run the same command under `accelerate launch -m llava_vitsplit dense ...`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from .outputs import add_overwrite_flag, check_outputs


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dense", help="segmentation, depth and detection heads on a frozen backbone")
    actions = parser.add_subparsers(dest="dense_command", metavar="ACTION", required=True)
    _register_train(actions)
    _register_eval(actions)
    _register_predict(actions)
    _register_sample(actions)


def _pair(values: list[int] | None) -> tuple[int, int] | None:
    if values is None:
        return None
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected one or two integers (height [width]), got {values}")
    return (values[0], values[-1])


def _add_inference_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inference (defaults: the part's own setting)")
    group.add_argument("--mode", choices=["whole", "slide"], help="whole image, or sliding windows")
    group.add_argument("--window", type=int, nargs="+", metavar="PX", help="sliding window size: H [W]")
    group.add_argument("--stride", type=int, nargs="+", metavar="PX", help="sliding window stride: H [W]")
    group.add_argument(
        "--test-scale", type=int, nargs=2, metavar=("LONG", "SHORT"), help="keep-ratio rescale limits"
    )
    group.add_argument("--native-size", action="store_true", help="no rescale before inference")
    group.add_argument(
        "--scales", type=float, nargs="+", help="multi-scale ratios, e.g. 0.5 0.75 1 1.25 1.5 1.75"
    )
    group.add_argument("--flip", action="store_true", help="also average the horizontally flipped image")


def _inference_from_args(base, args):
    changes = {}
    if args.mode:
        changes["mode"] = args.mode
    if args.window:
        changes["crop_size"] = _pair(args.window)
    if args.stride:
        changes["stride"] = _pair(args.stride)
    if args.mode == "slide" and args.window and not args.stride:
        changes["stride"] = tuple(v * 2 // 3 for v in changes["crop_size"])
    if args.test_scale:
        changes["test_scale"] = tuple(args.test_scale)
    if args.native_size:
        changes["test_scale"] = None
    if args.scales:
        changes["scales"] = tuple(args.scales)
    if args.flip:
        changes["flip"] = True
    return dataclasses.replace(base, **changes)


# ---------------------------------------------------------------- train


def _register_train(actions) -> None:
    parser = actions.add_parser(
        "train", help="train a task part (the paper's recipe for a preset, plus overrides)"
    )
    parser.add_argument(
        "--preset", required=True, help="a dense preset, e.g. ade20k-s, nyu-s (see `llava-vitsplit presets`)"
    )
    parser.add_argument("--data-root", required=True, type=Path, help="the dataset folder")
    parser.add_argument(
        "--dataset", help="layout: ade20k, cityscapes, pascal-context, nyu, folder (default: the preset's)"
    )
    parser.add_argument(
        "--backbone-path",
        type=Path,
        help="local transformers backbone folder (dinov2-s presets: the demo DINOv2-S)",
    )
    parser.add_argument("--output-dir", type=Path, help="default: playground/checkpoints/dense/PRESET")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        help="resume: the latest checkpoint in --output-dir, or a checkpoint folder",
    )
    run = parser.add_argument_group("schedule (defaults: the preset's recipe)")
    run.add_argument("--iters", type=int)
    run.add_argument("--batch-size", type=int, help="global batch (per device x processes x grad-accum)")
    run.add_argument("--grad-accum", type=int)
    run.add_argument("--lr", type=float, dest="learning_rate")
    run.add_argument("--weight-decay", type=float)
    run.add_argument("--task-head-lr-mult", type=float)
    run.add_argument("--schedule", choices=["poly", "one-cycle", "step"])
    run.add_argument("--layer-decay", type=float, help="layer-wise lr decay over the task head's copies (detection)")
    run.add_argument(
        "--task-option", action="append", default=[], metavar="KEY=JSON",
        help="a task-specific part setting, repeatable; detection: proposals=[500,300], rois_per_image=128, "
        "detections_per_image=50, neck_norm=\"group\"",
    )  # fmt: skip
    run.add_argument("--warmup-iters", type=int)
    run.add_argument("--max-grad-norm", type=float, help="clip gradients to this norm (default: no clipping)")
    run.add_argument(
        "--crop-size", type=int, nargs="+", metavar="PX", help="training crop H [W]; scales follow it (detection: Mask R-CNN resize SHORT LONG)"
    )
    run.add_argument("--no-photometric", action="store_true", help="no photometric distortion (segmentation)")
    run.add_argument(
        "--scale-jitter", type=int, metavar="PX",
        help="detection: large-scale jitter (rescale 0.1-2x, crop/pad to a PX square; use with --crop-size PX PX)",
    )  # fmt: skip
    run.add_argument("--eval-interval", type=int)
    run.add_argument("--save-interval", type=int)
    run.add_argument("--log-interval", type=int)
    run.add_argument("--keep-checkpoints", type=int)
    run.add_argument("--eval-max-images", type=int, help="score only the first N validation images")
    run.add_argument(
        "--mixed-precision", choices=["no", "bf16", "fp16"], help="default: Accelerate's setting"
    )
    run.add_argument("--num-workers", type=int)
    run.add_argument(
        "--position-interpolation",
        choices=["transformers", "dinov2"],
        help="DINOv2 position-embedding resize: transformers' (default) or the original DINOv2's (the authors')",
    )
    run.add_argument("--seed", type=int)
    data = parser.add_argument_group("data")
    data.add_argument("--train-split", default="train")
    data.add_argument("--val-split", default="val")
    data.add_argument("--no-eval", action="store_true", help="train without a validation set")
    data.add_argument("--num-classes", type=int, help="folder datasets without classes.txt")
    data.add_argument("--reduce-zero-label", action="store_true", help="folder datasets: raw 0 = unlabelled")
    data.add_argument(
        "--depth-scale", type=float, help="folder depth PNGs: stored value per metre (default 1000)"
    )
    data.add_argument(
        "--max-depth", type=float, help="folder depth datasets: depth cap in metres (default 10)"
    )
    split = parser.add_argument_group("split hyper-parameters (default: the preset's Table 10 row)")
    split.add_argument("--num-task-layers", type=int, help="K_t")
    split.add_argument("--num-prior-layers", type=int, help="K_p")
    split.add_argument("--prior-start-layer", type=int, help="b")
    split.add_argument("--selection", choices=["uniform", "sparse_gate"])
    parser.set_defaults(func=run_train)


def _task_options(values: list[str]) -> dict:
    options = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise ValueError(f"--task-option {value!r}: expected KEY=VALUE (VALUE in JSON, e.g. proposals=[500,300])")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text  # a bare word: a string
    return options


def run_train(args: argparse.Namespace) -> int:
    from llava_vitsplit.dense.trainer import DenseTrainConfig, train
    from llava_vitsplit.quickstart.dense_backbone import default_backbone_path

    names = ("num_task_layers", "num_prior_layers", "prior_start_layer", "selection")
    split_overrides = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    dataset_options = {
        "num_classes": args.num_classes,
        "reduce_zero_label": args.reduce_zero_label or None,
        "depth_scale": args.depth_scale,
        "max_depth": args.max_depth,
    }
    overrides = {
        name: getattr(args, name)
        for name in (
            "dataset", "backbone_path", "resume", "iters", "batch_size", "grad_accum", "learning_rate",
            "weight_decay", "task_head_lr_mult", "layer_decay", "schedule", "warmup_iters", "max_grad_norm", "eval_interval",
            "save_interval", "log_interval", "keep_checkpoints", "eval_max_images", "mixed_precision", "num_workers", "seed",
            "position_interpolation", "scale_jitter",
        )
    }  # fmt: skip
    config = DenseTrainConfig.from_preset(
        args.preset,
        args.data_root,
        args.output_dir or Path("playground/checkpoints/dense") / args.preset,
        crop_size=_pair(args.crop_size),
        train_split=args.train_split,
        val_split=None if args.no_eval else args.val_split,
        photometric=not args.no_photometric,
        split_overrides=split_overrides,
        dataset_options={k: v for k, v in dataset_options.items() if v is not None},
        task_options=_task_options(args.task_option),
        **overrides,
    )
    if config.backbone_path is None:
        config.backbone_path = default_backbone_path(args.preset)
    result = train(config)
    print(f"trained part: {result.final_dir}")
    if result.evaluations:
        last = result.evaluations[-1]
        summary = {k: round(v, 4) for k, v in last["metrics"].items() if k != "per_class"}
        print(f"last evaluation (iter {last['iter']}): {summary}")
    return 0


# ---------------------------------------------------------------- eval


def _register_eval(actions) -> None:
    parser = actions.add_parser("eval", help="score a trained part on a dataset split")
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="a trained part folder (final/ or checkpoints/checkpoint_N/part/)"
    )
    parser.add_argument("--data-root", required=True, type=Path)
    parser.add_argument("--dataset", help="layout (default: the one the part was trained on)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--backbone-path", type=Path, help="default: the backbone the part was trained over")
    parser.add_argument("--max-images", type=int)
    parser.add_argument("--output", type=Path, help="also write the metrics as JSON here")
    add_overwrite_flag(parser)
    parser.add_argument("--num-classes", type=int, help="folder datasets without classes.txt")
    parser.add_argument("--reduce-zero-label", action="store_true")
    parser.add_argument("--depth-scale", type=float)
    parser.add_argument("--max-depth", type=float)
    _add_inference_args(parser)
    parser.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    import torch
    from accelerate import Accelerator

    from llava_vitsplit.dense.datasets import load_dataset
    from llava_vitsplit.dense.evaluation import evaluate
    from llava_vitsplit.dense.model import DenseModel
    from llava_vitsplit.dense.task import DenseTaskConfig

    check_outputs({"--output": args.output}, overwrite=args.overwrite)
    accelerator = Accelerator()
    config = DenseTaskConfig.load(args.checkpoint)
    dataset_name = args.dataset or config.dataset
    if dataset_name is None:
        raise ValueError(f"{args.checkpoint} records no dataset layout: pass --dataset")
    options = {"num_classes": args.num_classes, "reduce_zero_label": args.reduce_zero_label or None,
               "depth_scale": args.depth_scale, "max_depth": args.max_depth}  # fmt: skip
    task = config.dense_task
    dataset = load_dataset(
        dataset_name, args.data_root, args.split, transform=task.eval_transform(), **options
    )
    try:
        task.check_dataset(dataset, config)
    except ValueError as error:
        raise ValueError(f"{args.checkpoint} is a {config.task} part: {error}") from error
    model = DenseModel.from_pretrained(
        {"task": args.checkpoint}, args.backbone_path, device=accelerator.device
    )
    inference = _inference_from_args(config.inference, args)
    with torch.inference_mode(), accelerator.autocast():
        metrics = evaluate(
            task.eval_forward(model.runner("task")),
            dataset,
            inference,
            device=accelerator.device,
            process_index=accelerator.process_index,
            num_processes=accelerator.num_processes,
            reduce=lambda state: accelerator.reduce(state, "sum"),
            max_images=args.max_images,
            show_progress=accelerator.is_local_main_process,
        )
    if accelerator.is_main_process:
        print(f"{dataset.name} with {inference}\n{task.format_metrics(metrics)}")
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(
                json.dumps({"inference": inference.to_dict(), "metrics": metrics}, indent=2) + "\n"
            )
    return 0


# ---------------------------------------------------------------- predict


def _register_predict(actions) -> None:
    parser = actions.add_parser(
        "predict", help="run one or several trained parts on an image, from one trunk pass"
    )
    parser.add_argument("image", type=Path)
    parser.add_argument(
        "--out", required=True, type=Path, help="PNG: the input beside each task's coloured output"
    )
    add_overwrite_flag(parser)
    parser.add_argument(
        "--checkpoint", required=True, action="append", metavar="[NAME=]DIR",
        help="a trained part folder, repeatable (NAME defaults to its task, e.g. segmentation, depth)",
    )  # fmt: skip
    parser.add_argument(
        "--tasks", help="comma-separated subset of the loaded parts to run, e.g. segmentation,depth"
    )
    parser.add_argument(
        "--backbone-path", type=Path, help="default: the backbone the parts were trained over"
    )
    parser.add_argument(
        "--save-raw",
        type=Path,
        metavar="DIR",
        help="also write IMAGE_PART.png: class ids (segmentation), 16-bit mm (depth)",
    )
    parser.add_argument("--device", help="default: cuda when available, else cpu")
    _add_inference_args(parser)
    parser.set_defaults(func=run_predict)


def _parse_checkpoints(values: list[str]) -> dict[str, Path]:
    from llava_vitsplit.dense.task import DenseTaskConfig

    parts: dict[str, Path] = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep:
            name, folder = DenseTaskConfig.load(value).task, value
        if name in parts:
            raise ValueError(f"two parts named {name!r}: name them, e.g. --checkpoint {name}2=DIR")
        parts[name] = Path(folder)
    return parts


def _with_detection(model, tasks: list[str], instance_tasks: list[str], image, device) -> dict:
    """One detection part and any per-pixel parts from one trunk pass on detection's input."""
    import torch

    from llava_vitsplit.dense.detection import detect_with_dense_parts

    if len(instance_tasks) != 1:
        raise ValueError(f"one detection part per run, got {instance_tasks}")
    (name,) = instance_tasks
    others = {t: model.parts[t] for t in tasks if t != name}
    tensor = torch.tensor(image).permute(2, 0, 1).float().div(255).to(device)
    detections, dense = detect_with_dense_parts(
        model.parts[name], model.adapter, others, [tensor], model.trunk.native_patch_size
    )
    return {name: detections, **dense}


def run_predict(args: argparse.Namespace) -> int:
    import torch

    from llava_vitsplit.dense.datasets import read_image
    from llava_vitsplit.dense.inference import predict
    from llava_vitsplit.dense.model import DenseModel
    from llava_vitsplit.dense.tasks import PixelTask
    from llava_vitsplit.dense.transforms import normalize
    from llava_vitsplit.dense.visualize import side_by_side

    parts = _parse_checkpoints(args.checkpoint)
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else list(parts)
    missing = [task for task in tasks if task not in parts]
    if missing:
        raise ValueError(f"--tasks names {missing}, but the loaded parts are {list(parts)}")
    raw = {f"--save-raw ({task})": args.save_raw / f"{args.image.stem}_{task}.png" for task in tasks} if args.save_raw else {}
    check_outputs({"--out": args.out, **raw}, [args.image], overwrite=args.overwrite)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = DenseModel.from_pretrained({t: parts[t] for t in tasks}, args.backbone_path, device=device)
    # One inference setting for all tasks (they share each trunk pass): the first part's, plus overrides.
    inference = _inference_from_args(model.parts[tasks[0]].config.inference, args)
    image = read_image(args.image)
    instance_tasks = [t for t in tasks if not isinstance(model.parts[t].config.dense_task, PixelTask)]
    with torch.inference_mode():
        if instance_tasks:  # detection: its own resize; the other parts share its trunk pass or are refused
            outputs = _with_detection(model, tasks, instance_tasks, image, device)
        else:
            pixel_values = normalize(image).unsqueeze(0).to(device)
            outputs = predict(model, pixel_values, inference, model.activations(tasks))
    panels = [("input", image)]
    for task in tasks:
        config = model.parts[task].config
        prediction = config.dense_task.postprocess(outputs[task][0], config)
        title, panel = config.dense_task.draw(image, prediction, config)
        panels.append((f"{task}: {title}", panel))
        if args.save_raw:
            from PIL import Image

            args.save_raw.mkdir(parents=True, exist_ok=True)
            raw_image = config.dense_task.raw_output(prediction)
            Image.fromarray(raw_image).save(args.save_raw / f"{args.image.stem}_{task}.png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    side_by_side(panels).save(args.out)
    print(f"wrote {args.out} ({', '.join(tasks)} from one trunk pass per view, {inference.mode} inference)")
    return 0


# ---------------------------------------------------------------- sample


def _register_sample(actions) -> None:
    parser = actions.add_parser(
        "sample", help="write the small real-photo sample datasets (segmentation, depth, detection)"
    )
    parser.add_argument("--out", type=Path, help="default: the cache folder (LLAVA_VITSPLIT_CACHE)")
    parser.set_defaults(func=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    from llava_vitsplit.quickstart.dense_photos import build_sample_datasets
    from llava_vitsplit.quickstart.detection_photos import build_detection_sample

    folders = build_sample_datasets(args.out)
    detection = build_detection_sample(args.out / "detection" if args.out else None)
    print(f"segmentation sample: {folders.segmentation}\ndepth sample: {folders.depth}\ndetection sample: {detection}")
    return 0
