"""lmms-eval hooks for pope_local; the scoring itself lives in llava_vitsplit.eval.pope."""

from llava_vitsplit.eval.pope import PopeMetrics, parse_yes_no, summarize_pope

METRICS = (
    "pope_accuracy", "pope_precision", "pope_recall", "pope_f1_score", "pope_yes_ratio",
    "pope_f1_adversarial", "pope_f1_popular", "pope_f1_random", "pope_f1_category_mean",
)  # fmt: skip


def pope_doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def pope_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['question'].strip()}{kwargs.get('post_prompt', '')}"


def pope_process_results(doc, results):
    label = doc["answer"].strip().lower()
    if label not in ("yes", "no"):
        raise ValueError(f"POPE question {doc['question_id']}: answer must be yes/no, got {doc['answer']!r}")
    item = {
        "question_id": doc["question_id"],
        "category": doc["category"],
        "prediction": parse_yes_no(results[0]),
        "label": label,
    }
    return dict.fromkeys(METRICS, item)


def _pooled(items):
    return PopeMetrics.from_pairs((item["prediction"], item["label"]) for item in items)


def _category_f1(items, category):
    chosen = [item for item in items if item["category"] == category]
    return _pooled(chosen).f1 if chosen else float("nan")  # NaN, not 0: the category was not evaluated


def pope_accuracy(items):
    return _pooled(items).accuracy


def pope_precision(items):
    return _pooled(items).precision


def pope_recall(items):
    return _pooled(items).recall


def pope_f1_score(items):
    return _pooled(items).f1


def pope_yes_ratio(items):
    return _pooled(items).yes_ratio


def pope_f1_adversarial(items):
    return _category_f1(items, "adversarial")


def pope_f1_popular(items):
    return _category_f1(items, "popular")


def pope_f1_random(items):
    return _category_f1(items, "random")


def pope_f1_category_mean(items):
    return summarize_pope((item["category"], item["prediction"], item["label"]) for item in items)[
        "category_mean"
    ]["f1"]
