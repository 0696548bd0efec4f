import io
import sys

import pytest

from llava_vitsplit.cli import main
from llava_vitsplit.serve.cli_chat import ASSISTANT_PREFIX, USER_PROMPT, chat_loop
from llava_vitsplit.serve.generation_settings import chat_generation_config
from llava_vitsplit.serve.image_input import read_image

GREEDY = chat_generation_config(temperature=0, max_new_tokens=6)


def scripted(lines):
    """`input()` stand-in: returns the lines in order, echoing the prompt, then end of input."""
    remaining = list(lines)

    def read_line(prompt):
        if not remaining:
            raise EOFError
        return remaining.pop(0)

    return read_line


def test_a_terminal_conversation_streams_two_answers(engine, example_photos, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    out = io.StringIO()
    answers = chat_loop(
        engine, [read_image(example_photos[0])], GREEDY,
        read_line=scripted(["What animal is this?", "   ", f"/image {notes}", "What colour is it?", "/clear", "Hi"]),
        out=out,
    )
    text = out.getvalue()
    assert answers == 3
    assert text.startswith("[image: chelsea_the_cat.jpg, 451x300.]")
    assert text.count(ASSISTANT_PREFIX) == 3
    assert "[The message is empty: type a question about the image.]" in text
    assert "[notes.txt is not an image" in text and "[conversation cleared]" in text


def test_images_added_mid_conversation_go_with_the_next_question(engine, example_photos, monkeypatch):
    prompts = []
    original = engine.prepare_inputs

    def recording(conversation, question):
        prompts.append((engine.build_prompt(conversation, question), len(conversation.images)))
        return original(conversation, question)

    monkeypatch.setattr(engine, "prepare_inputs", recording)
    out = io.StringIO()
    script = ["What animal is this?", "/add", f"/add {example_photos[1]} {example_photos[2]}", "And these?",
              f"/image {example_photos[3]}", "What is this?"]
    assert chat_loop(engine, [read_image(example_photos[0])], GREEDY, read_line=scripted(script), out=out) == 3
    text = out.getvalue()
    assert "[/add needs an image file or URL]" in text and "[image: astronaut.jpg" in text and "[image: coffee.jpg" in text
    (first, one), (second, three), (third, fresh) = prompts
    assert (one, three, fresh) == (1, 3, 1)
    assert second.count("<image>") == 3 and "USER: <image>\n<image>\nAnd these? ASSISTANT:" in second
    assert third.count("<image>") == 1 and "What animal" not in third


def test_ctrl_c_stops_an_answer_and_keeps_it_and_a_model_failure_is_reported(engine, example_photos, monkeypatch):
    def interrupted(inputs, generate_kwargs):
        yield "A cat"
        raise KeyboardInterrupt

    def failing(inputs, generate_kwargs):
        raise RuntimeError("out of memory (simulated)")
        yield

    out = io.StringIO()
    image = [read_image(example_photos[0])]
    monkeypatch.setattr(engine, "_generate", interrupted)
    assert chat_loop(engine, image, GREEDY, read_line=scripted(["What is it?"]), out=out) == 1
    assert f"{ASSISTANT_PREFIX}A cat [stopped]" in out.getvalue()
    monkeypatch.setattr(engine, "_generate", failing)
    assert chat_loop(engine, image, GREEDY, read_line=scripted(["What is it?", "Again?"]), out=out) == 0
    assert out.getvalue().count("[generation failed: RuntimeError: out of memory (simulated)]") == 2


def test_chat_command_end_to_end(tiny_checkpoint, example_photos, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("What animal is this?\nAnd its colour?\n"))
    status = main(["chat", "--model-path", str(tiny_checkpoint), "--image-file", str(example_photos[0]),
                   "--device", "cpu", "--temperature", "0", "--max-new-tokens", "5"])
    output = capsys.readouterr().out
    assert status == 0
    assert output.count(USER_PROMPT) == 3  # two questions, then the prompt that meets end of input
    assert output.count(ASSISTANT_PREFIX) == 2


def test_chat_command_names_a_bad_image(tiny_checkpoint, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    with pytest.raises(SystemExit, match="llava-vitsplit chat: notes.txt is not an image"):
        main(["chat", "--model-path", str(tiny_checkpoint), "--image-file", str(notes)])


def test_without_model_path_it_says_how_to_make_the_quickstart_model(tmp_path, monkeypatch, example_photos):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEMO_CHECKPOINTS", str(tmp_path / "checkpoints"))
    with pytest.raises(SystemExit) as error:
        main(["chat", "--image-file", str(example_photos[0])])
    message = str(error.value)
    assert "quick start's model is not at" in message and "scripts/finetune.sh" in message


def test_without_model_path_it_opens_the_quickstart_model(tiny_checkpoint, tmp_path, monkeypatch, example_photos):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "demo-finetune").symlink_to(tiny_checkpoint)
    monkeypatch.setenv("DEMO_CHECKPOINTS", str(checkpoints))
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hi\n"))
    assert main(["chat", "--image-file", str(example_photos[0]), "--device", "cpu", "--max-new-tokens", "3"]) == 0


def test_a_projector_only_folder_without_base_is_explained(tmp_path, example_photos):
    (tmp_path / "mm_projector.safetensors").write_bytes(b"")
    with pytest.raises(SystemExit, match="pass model_base"):
        main(["chat", "--model-path", str(tmp_path), "--image-file", str(example_photos[0])])
