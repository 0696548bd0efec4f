"""MMBench: prompts, option-letter extraction, accuracy and the submission spreadsheet.

Questions come from MMBench's TSV (images as base64, LLaVA reads this) or the Hub's parquet
(lmms-lab/MMBench, config "en"); both have the columns index, question, hint, A..D, answer (dev
only), category, l2-category (the Hub spells it L2-category), split.

Accuracy: a question is right when the letter read from the answer equals `answer`. MMBench's
CircularEval stores each rotated copy of a question under index + k * 1,000,000; when such copies
are present a question counts only if all its copies are right (lmms-eval's rule); without them it
is plain per-question accuracy. Rotating the options at inference (LLaVA's --all-rounds) is not
done here: an answers file holds one answer per index.
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

OPTION_LETTERS = ("A", "B", "C", "D", "E")
ANSWER_SUFFIX = "Answer with the option's letter from the given choices directly."
# lmms-eval's MMBench tasks introduce the options with this line (its mmbench.yaml `sys_prompt`).
LMMS_EVAL_OPTIONS_HEADER = "There are several options:"
CIRCULAR_OFFSET = 1_000_000


def _is_missing(value) -> bool:
    """LLaVA's notion of an empty cell: None, NaN, or the strings "nan"/"none"."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in ("nan", "none")


def llava_options(row: Mapping) -> dict[str, str]:
    """Options in letter order up to the first empty one (LLaVA reads A..D this way)."""
    options = {}
    for letter in OPTION_LETTERS:
        if letter not in row or _is_missing(row[letter]):
            break
        options[letter] = str(row[letter])
    return options


def build_llava_prompt(row: Mapping, with_suffix: bool = True) -> str:
    """LLaVA's MMBench prompt: hint, question, one "A. ..." line per option, then the suffix.

    Without the suffix it is what LLaVA records as the answer's `prompt`.
    """
    lines = [] if _is_missing(row.get("hint")) else [str(row["hint"])]
    lines.append(str(row["question"]))
    lines.extend(f"{letter}. {text}" for letter, text in llava_options(row).items())
    if with_suffix:
        lines.append(ANSWER_SUFFIX)
    return "\n".join(lines)


def _lmms_eval_present(value) -> bool:
    # lmms-eval's own test: a truthy cell that is neither NaN nor the string "nan".
    return bool(value) and not (isinstance(value, float) and math.isnan(value)) and value != "nan"


def build_lmms_eval_prompt(row: Mapping, post_prompt: str | None = "\n" + ANSWER_SUFFIX) -> str:
    """The text lmms-eval's built-in mmbench_en tasks send, character for character:
    "<hint> <question> There are several options:\\nA. ...\\nB. ..." then, unless `post_prompt` is
    None, "\\n" + post_prompt (whose default starts with its own newline, hence a blank line)."""
    options = "\n".join(
        f"{letter}. {row[letter]}"
        for letter in OPTION_LETTERS
        if letter in row and _lmms_eval_present(row[letter])
    )
    options = f"{LMMS_EVAL_OPTIONS_HEADER}\n{options}" if options else LMMS_EVAL_OPTIONS_HEADER
    hint = row.get("hint")
    has_hint = hint is not None and not (isinstance(hint, float) and math.isnan(hint)) and hint != "nan"
    query = f"{hint} {row['question']} {options}" if has_hint else f"{row['question']} {options}"
    return query if post_prompt is None else f"{query}\n{post_prompt}"


# The phrase matches in any case, the letter only in capitals ("the answer is a dog" names no option).
_ANSWER_PHRASE = re.compile(
    r"\b(?i:answer|option|choice)\b(?:\s+(?i:is|would be|should be))?\s*[:\-]?\s*\(?([A-E])\)?(?![A-Za-z])"
)
_LEADING_LETTER = re.compile(r"^\(?([A-E])(?:[.):]|\)|$)")
_TOKEN = re.compile(r"^\(?([A-E])\)?[.,:;)]*$")


def extract_option_letter(response: str, options: Mapping[str, str]) -> str | None:
    """The option letter a free-text answer picks, or None when it cannot be told.

    Tried in order: the whole answer is a letter ("b", "(C)", "D."); the answer opens with one
    ("B. cat", "(A) dog", "C: ..."); a phrase names it ("The answer is D", "Answer: (B)");
    exactly one standalone capital letter appears (an "A" followed by a word is read as the
    article); exactly one option's text appears as words. Only letters of `options` count.
    """
    letters = set(options)
    text = response.strip()
    if not text:
        return None
    bare = text.strip(" .:;,!()'\"")
    if len(bare) == 1 and bare.upper() in letters:
        return bare.upper()
    leading = _LEADING_LETTER.match(text)
    if leading and leading.group(1) in letters:
        return leading.group(1)
    phrased = [match.group(1) for match in _ANSWER_PHRASE.finditer(text)]
    phrased = [letter for letter in phrased if letter in letters]
    if phrased and len(set(phrased)) == 1:
        return phrased[0]
    words = text.split()
    standalone = set()
    for position, word in enumerate(words):
        token = _TOKEN.match(word)
        if not token or token.group(1) not in letters:
            continue
        is_article = word == "A" and position + 1 < len(words) and words[position + 1][:1].isalpha()
        if not is_article:
            standalone.add(token.group(1))
    if len(standalone) == 1:
        return standalone.pop()
    lowered = text.lower()
    named = [
        letter
        for letter, option in options.items()
        if option.strip() and re.search(r"(?<!\w)" + re.escape(option.strip().lower()) + r"(?!\w)", lowered)
    ]
    # "dark red" also contains "red": keep only options not contained in another named one.
    named = [
        letter
        for letter in named
        if not any(other != letter and options[letter].lower() in options[other].lower() for other in named)
    ]
    return named[0] if len(named) == 1 else None


def read_mmbench_table(path: str | Path, with_images: bool = False):
    """MMBench questions as a pandas DataFrame from the official TSV or a Hub-format parquet file;
    the image column is left out unless `with_images`. `index` becomes an integer."""
    import pandas as pd

    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        table = pd.read_parquet(path, columns=[n for n in names if with_images or n != "image"])
    elif path.suffix in (".tsv", ".txt"):
        table = pd.read_csv(path, sep="\t", usecols=lambda name: with_images or name != "image")
    else:
        raise ValueError(f"{path}: MMBench questions must be a .tsv (official) or .parquet (Hub) file")
    missing = [column for column in ("index", "question", "A", "B") if column not in table.columns]
    if missing:
        raise ValueError(f"{path}: MMBench table lacks the columns {missing}")
    try:
        table["index"] = table["index"].astype("int64")
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: MMBench 'index' column must hold integers ({error})") from error
    duplicated = table["index"][table["index"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"{path}: MMBench index values repeat, e.g. {duplicated[:5]}")
    return table


def mmbench_row_image(row: Mapping):
    """The PIL image of a row: base64 text (TSV) or the Hub's {"bytes", "path"} cell."""
    from PIL import Image

    value = row["image"]
    if isinstance(value, str):
        data = base64.b64decode(value)
    elif isinstance(value, Mapping) and value.get("bytes"):
        data = value["bytes"]
    else:
        raise ValueError(f"MMBench row {row.get('index')!r}: image is neither base64 text nor embedded bytes")
    return Image.open(io.BytesIO(data)).convert("RGB")


def mmbench_accuracy(records: Iterable[Mapping]) -> dict:
    """Accuracy of records {index, answer, prediction, options, category?} where `prediction` is the
    raw answer text; overall and per category, with CircularEval grouping (see the module doc)."""
    groups: dict[int, list[bool]] = {}
    categories: dict[int, str] = {}
    unparsed = 0
    for record in records:
        answer = record["answer"]
        if _is_missing(answer):
            raise ValueError(f"MMBench index {record['index']}: no ground-truth answer to score against")
        letter = extract_option_letter(str(record["prediction"]), record["options"])
        unparsed += letter is None
        question = int(record["index"]) % CIRCULAR_OFFSET
        groups.setdefault(question, []).append(letter == str(answer).strip())
        category = record.get("category")
        if int(record["index"]) < CIRCULAR_OFFSET or question not in categories:
            categories[question] = "uncategorized" if _is_missing(category) else str(category)
    if not groups:
        raise ValueError("no MMBench answers to score")
    hits = {question: all(results) for question, results in groups.items()}
    per_category: dict[str, list[bool]] = {}
    for question, hit in hits.items():
        per_category.setdefault(categories[question], []).append(hit)
    return {
        "accuracy": sum(hits.values()) / len(hits),
        "num_questions": len(hits),
        "num_rows": sum(len(results) for results in groups.values()),
        "num_unparsed": unparsed,
        "circular": any(len(results) > 1 for results in groups.values()),
        "per_category": {name: sum(values) / len(values) for name, values in sorted(per_category.items())},
    }


def _matched_answers(table, answers: Mapping[int, str], allow_missing: bool) -> list:
    indices = set(table["index"].tolist())
    unknown = [index for index in answers if index not in indices]
    if unknown:
        raise ValueError(f"{len(unknown)} answers are for unknown MMBench indices, e.g. {unknown[:5]}")
    missing = [index for index in table["index"].tolist() if index not in answers]
    if missing and not allow_missing:
        raise ValueError(
            f"{len(missing)} of {len(table)} MMBench questions have no answer, e.g. {missing[:5]}"
        )
    return [answers.get(index) for index in table["index"].tolist()]


def score_mmbench(table, answers: Mapping[int, str], allow_missing: bool = False) -> dict:
    """Accuracy of `answers` {index: text} on a table with known answers (the dev split)."""
    if "answer" not in table.columns or table["answer"].map(_is_missing).any():
        raise ValueError(
            "this MMBench table has no ground-truth answers (test split): submit the spreadsheet instead"
        )
    predictions = _matched_answers(table, answers, allow_missing)
    records = [
        {**row, "prediction": prediction, "options": llava_options(row)}
        for row, prediction in zip(table.to_dict("records"), predictions, strict=True)
        if prediction is not None
    ]
    result = mmbench_accuracy(records)
    result["num_unanswered"] = sum(prediction is None for prediction in predictions)
    return result


SUBMISSION_COLUMNS = (
    "index",
    "question",
    *OPTION_LETTERS,
    "answer",
    "prediction",
    "category",
    "l2-category",
    "split",
)


def write_mmbench_submission(
    table, answers: Mapping[int, str], path: str | Path, allow_missing: bool = False
) -> Path:
    """Write MMBench's upload spreadsheet: one row per question index with the raw answer text in
    `prediction` (the evaluation server reads the letter itself), as LLaVA's converter does."""
    table = table.rename(columns={"L2-category": "l2-category"}).copy()
    table["prediction"] = _matched_answers(table, answers, allow_missing)
    columns = [column for column in SUBMISSION_COLUMNS if column in table.columns]
    path = Path(path)
    if path.suffix != ".xlsx":
        raise ValueError(f"{path}: the MMBench submission must be an .xlsx file")
    path.parent.mkdir(parents=True, exist_ok=True)
    table[columns].to_excel(path, index=False, engine="openpyxl")
    return path
