"""lmms-eval hooks for mmbench_en_dev_local; the scoring itself lives in llava_vitsplit.eval.mmbench."""

import pandas as pd
from lmms_eval.tasks._task_utils.file_utils import generate_submission_file

from llava_vitsplit.eval import mmbench

ROW_COLUMNS = (
    "index",
    "question",
    "hint",
    *mmbench.OPTION_LETTERS,
    "answer",
    "category",
    "L2-category",
    "split",
)


def mmbench_doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def mmbench_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    post_prompt = lmms_eval_specific_kwargs["post_prompt"] if lmms_eval_specific_kwargs else None
    return mmbench.build_lmms_eval_prompt(doc, post_prompt)


def mmbench_process_results(doc, results):
    row = {column: doc[column] for column in ROW_COLUMNS if column in doc}
    item = {**row, "prediction": results[0].strip(), "options": mmbench.llava_options(doc)}
    return {"mmbench_accuracy": item, "submission": item}


def mmbench_accuracy(items):
    return mmbench.mmbench_accuracy(items)["accuracy"]


def mmbench_submission(items, args):
    table = pd.DataFrame(
        [
            {key: value for key, value in item.items() if key not in ("prediction", "options")}
            for item in items
        ]
    )
    table["index"] = table["index"].astype("int64")
    answers = {int(item["index"]): item["prediction"] for item in items}
    path = generate_submission_file("mmbench_en_dev_local_results.xlsx", args)
    mmbench.write_mmbench_submission(table, answers, path)
