"""lmms-eval hooks for vqav2_val_local; the scoring itself lives in llava_vitsplit.eval.vqav2."""

from llava_vitsplit.eval.vqav2 import vqa_accuracy


def vqav2_doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def vqav2_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}{kwargs.get('post_prompt', '')}"


def vqav2_process_results(doc, results):
    if not doc.get("answers"):
        raise ValueError(f"VQAv2 question {doc['question_id']} has no human answers (a test split?)")
    return {"exact_match": vqa_accuracy(results[0], [item["answer"] for item in doc["answers"]])}
