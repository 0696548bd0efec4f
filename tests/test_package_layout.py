"""The package's dependency rules that no single module's tests see."""

import subprocess
import sys

CORE_PACKAGES = ("split", "model", "data", "train", "eval", "serve")


def test_core_packages_do_not_import_the_quickstart_kit():
    """The core packages work without `llava_vitsplit.quickstart` (the CPU quick-start kit)."""
    modules = [
        "llava_vitsplit.split",
        "llava_vitsplit.model",
        "llava_vitsplit.model.builder",
        "llava_vitsplit.model.parts",
        "llava_vitsplit.data.llava_dataset",
        "llava_vitsplit.data.collator",
        "llava_vitsplit.train.train",
        "llava_vitsplit.train.lora",
        "llava_vitsplit.eval.inference",
        "llava_vitsplit.eval.model_vqa",
        "llava_vitsplit.serve.chat_session",
        "llava_vitsplit.serve.cli_chat",
    ]
    assert {name.split(".")[1] for name in modules} == set(CORE_PACKAGES)
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('llava_vitsplit.quickstart')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"core packages import the quick-start kit: {result.stdout}"
