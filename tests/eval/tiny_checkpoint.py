"""A tiny LlavaViTSplit checkpoint for evaluation tests, optionally taught a few answers.

The LLM's tokenizer is byte-level BPE (no unknown characters: answers such as "B" or "2" survive
decoding); the tower is the model tests' tiny DINOv2 (32 px, 16 image tokens). `teach` fine-tunes
the whole model on (question, image, answer) triples with the v1 template, supervising the answer
only, so the checkpoint gives definite, question-dependent answers instead of noise.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from llava_vitsplit.data.conversation import VICUNA_SYSTEM
from llava_vitsplit.eval.inference import VisualQuestionAnswerer
from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration
from tests.model.tiny import save_tiny_tower

# Whole-phrase tokens keep prompts short (training steps cheap on a CPU); they are added tokens,
# which the tokenizer matches first, so the text around them is split the same in every context.
PHRASES = [
    VICUNA_SYSTEM,
    "USER:",
    "ASSISTANT:",
    "Answer the question using a single word or phrase.",
    "Answer with the option's letter from the given choices directly.",
    "There are several options:",
]
CORPUS = [
    "Is there a red square in the image? How many dogs are there? What colour is it? Which animal is shown?",
    "yes no two 2 3 red blue green white black gray yellow purple dog cat cow pig A. B. C. D. The answer is",
]


def byte_level_tokenizer() -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer)
    tokenizer.add_tokens([AddedToken(phrase, normalized=False) for phrase in PHRASES])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def save_llm(folder: Path) -> Path:
    tokenizer = byte_level_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_model(parts_dir: Path):
    """(model, processor): a fresh ViT-Split model over the tiny LLM and DINOv2 tower."""
    llm = save_llm(parts_dir / "llm")
    tower = save_tiny_tower(parts_dir / "tower", "dinov2")
    return LlavaViTSplitForConditionalGeneration.from_parts(llm, tower, projector_type="vitsplit")


def teach(model, processor, examples, steps: int = 60, lr: float = 3e-3, conv_template: str = "vicuna_v1"):
    """Fine-tune on (question, image, answer) triples as one batch; only the answers are supervised."""
    answerer = VisualQuestionAnswerer(model, processor, conv_template)
    eos = processor.tokenizer.eos_token
    prompts = [answerer.prompt(question, 1) for question, _, _ in examples]
    images = [image for _, image, _ in examples]
    full = [f"{prompt} {answer}{eos}" for prompt, (_, _, answer) in zip(prompts, examples)]
    inputs = processor(text=full, images=images, padding=True, padding_side="right", return_tensors="pt")
    labels = inputs["input_ids"].clone()
    labels[inputs["attention_mask"] == 0] = -100
    for row, (prompt, image) in enumerate(zip(prompts, images)):
        prompt_length = len(processor(text=[prompt], images=[image])["input_ids"][0])
        labels[row, :prompt_length] = -100
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(**inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return loss.item()


def save_checkpoint(model, processor, folder: Path) -> Path:
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
