"""`llava-vitsplit train` is `python -m llava_vitsplit.train` with the same arguments."""

import pytest

from llava_vitsplit.cli import main


def test_train_subcommand_hands_every_argument_to_the_training_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "--tune_mm_mlp_adapter" in printed and "--mm_projector_type" in printed


def test_other_commands_still_reject_unknown_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["presets", "--no-such-flag"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
