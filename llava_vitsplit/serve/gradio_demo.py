"""The Gradio chat demo: one process serves the page, the API and the model.

LLaVA runs a controller, model workers and a web server; here the model lives in the web process
and Gradio's queue does the scheduling: the two events that run the model (send, regenerate)
share one concurrency slot, so requests from several users wait their turn and each streams into
its own session state. Bad input (not an image, an empty message, a prompt longer than the
context) is answered in the chat, and the next request is served as usual.

    llava-vitsplit demo --model-path PATH [--model-base BASE] [--host 127.0.0.1 --port 7860]
    python -m llava_vitsplit.serve.gradio_demo --model-path PATH
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from transformers import GenerationConfig

from llava_vitsplit.model.generation import sampling_temperature

from .chat_session import ChatEngine, Conversation
from .errors import ChatInputError
from .example_images import DEFAULT_FOLDER, write_example_photos
from .generation_settings import chat_generation_config
from .image_input import read_image
from .options import DEFAULT_TOP_P, add_demo_arguments, load_engine

logger = logging.getLogger(__name__)

# The events that run the model share this slot; everything else runs at once.
MODEL_SLOT = "model"
# Uploads larger than this are refused by Gradio itself; any real photo is far smaller.
MAX_UPLOAD = "200mb"
MAX_NEW_TOKENS_SLIDER = 2048
SESSION_TTL_S = 2 * 3600
WARNING = "⚠ "  # no emoji variant: plain fonts (DejaVu) have this one


@dataclass
class DemoState:
    """One browser session: what the model reads (`conversation`) and what the chat shows."""

    conversation: Conversation = field(default_factory=Conversation)
    history: list[dict] = field(default_factory=list)  # Gradio chat messages
    reply_index: int | None = None  # position in `history` of the last model answer

    def say(self, role: str, content) -> None:
        self.history.append({"role": role, "content": content})

    def warn(self, text: str) -> None:
        self.say("assistant", WARNING + text)


def _settings(temperature, top_p, max_new_tokens) -> GenerationConfig:
    return chat_generation_config(float(temperature), float(top_p), int(max_new_tokens))


def _uploaded_paths(message) -> tuple[str, list[str]]:
    """Text and file paths of a MultimodalTextbox value (a dict, or a bare string from the API)."""
    if message is None:
        return "", []
    if isinstance(message, str):
        return message, []
    files = [item["path"] if isinstance(item, dict) else str(item) for item in message.get("files") or []]
    return message.get("text") or "", files


class ChatDemo:
    """The event handlers around one `ChatEngine`; `build()` lays out the page."""

    def __init__(self, engine: ChatEngine, *, title: str = "LLaVA-ViTSplit", defaults: GenerationConfig | None = None,
                 examples_folder: str | Path | None = None):
        self.engine = engine
        self.title = title
        self.defaults = defaults or chat_generation_config()
        self.examples_folder = examples_folder

    # -- handlers (each yields: chat messages, textbox value, state) ------------------------------

    def send(self, message, state: DemoState | None, temperature, top_p, max_new_tokens):
        state = state or DemoState()
        text, files = _uploaded_paths(message)
        busy, idle = gr.MultimodalTextbox(value=None, interactive=False), gr.MultimodalTextbox(interactive=True)
        try:
            settings = _settings(temperature, top_p, max_new_tokens)
            for path in files:  # images join the conversation and go with this message's question
                image = read_image(path)
                state.conversation.attach(image)
                state.say("user", {"path": path, "alt_text": image.name})
                if image.downscaled:
                    state.say("assistant", image.describe_downscale())
            if text.strip():
                state.say("user", text)
            yield state.history, busy, state
            yield from self._stream(state, self.engine.reply(state.conversation, text, settings), idle)
        except ChatInputError as error:
            state.warn(str(error))
            yield state.history, idle, state

    def regenerate(self, state: DemoState | None, temperature, top_p, max_new_tokens):
        state = state or DemoState()
        idle = gr.MultimodalTextbox(interactive=True)
        try:
            settings = _settings(temperature, top_p, max_new_tokens)
            replies = self.engine.regenerate(state.conversation, settings)
            if state.reply_index is not None:
                del state.history[state.reply_index :]
            yield from self._stream(state, replies, idle)
        except ChatInputError as error:
            state.warn(str(error))
            yield state.history, idle, state

    def clear(self):
        state = DemoState()
        return state.history, gr.MultimodalTextbox(value=None, interactive=True), state

    def _stream(self, state: DemoState, replies: Iterator[str], idle) -> Iterator[tuple]:
        """Show a reply as it grows; input errors surface on the first step, before any text."""
        started = False
        try:
            for partial in replies:
                if not started:
                    state.say("assistant", "")
                    state.reply_index = len(state.history) - 1
                    started = True
                state.history[-1]["content"] = partial
                yield state.history, gr.skip(), state
        except ChatInputError:
            raise
        except Exception as error:  # the model failed on this request; the server goes on serving
            logger.exception("generation failed")
            state.warn(f"Generation failed ({type(error).__name__}: {error}).")
        finally:
            replies.close()  # on Stop or Clear Gradio closes this generator: stop the model too
        yield state.history, idle, state

    # -- page ------------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        examples = write_example_photos(self.examples_folder or DEFAULT_FOLDER)
        with gr.Blocks(title=self.title, analytics_enabled=False) as demo:
            # Kept while the tab is open; API sessions (gradio_client) are dropped after two idle hours.
            state = gr.State(None, time_to_live=SESSION_TTL_S)
            gr.Markdown(f"## {self.title}\nAttach one or more images to any message and ask about them; "
                        "Clear starts a new conversation.")
            chatbot = gr.Chatbot(label="Chat", height=520, elem_id="chatbot", feedback_options=None,
                                 buttons=["copy"], allow_file_downloads=False)
            textbox = gr.MultimodalTextbox(
                placeholder="Attach images and type a question, then press Enter",
                file_count="multiple", sources=["upload"], show_label=False, elem_id="message",
                submit_btn=True, autofocus=True,
                # Longer pasted text would arrive as a .txt attachment instead of as the message.
                max_plain_text_length=100_000,
            )
            with gr.Row():
                regenerate_button = gr.Button("Regenerate", elem_id="regenerate")
                stop_button = gr.Button("Stop", elem_id="stop")
                clear_button = gr.Button("Clear", elem_id="clear")
            with gr.Accordion("Parameters", open=False):
                default_temperature = sampling_temperature(self.defaults)
                temperature = gr.Slider(0.0, max(1.0, default_temperature), value=default_temperature, step=0.05, label="Temperature",
                                        info="0 = greedy decoding", elem_id="temperature")
                top_p = gr.Slider(0.05, 1.0, value=self.defaults.top_p or DEFAULT_TOP_P, step=0.05, label="Top-p", elem_id="top_p")
                longest = min(MAX_NEW_TOKENS_SLIDER, self.engine.context_len)
                max_new_tokens = gr.Slider(1, longest, value=min(self.defaults.max_new_tokens, longest), step=1,
                                           label="Max new tokens", elem_id="max_new_tokens")
            gr.Examples(
                examples=[[{"text": question, "files": [str(path)]}] for path, question in examples],
                inputs=[textbox], label="Examples (photos from scikit-image)",
            )
            controls = [temperature, top_p, max_new_tokens]
            outputs = [chatbot, textbox, state]
            model_event = {"concurrency_limit": 1, "concurrency_id": MODEL_SLOT}
            send_event = textbox.submit(self.send, [textbox, state, *controls], outputs, api_name="send",
                                        **model_event)
            regenerate_event = regenerate_button.click(self.regenerate, [state, *controls], outputs,
                                                       api_name="regenerate", **model_event)
            stop_button.click(None, None, None, cancels=[send_event, regenerate_event], api_name=False)
            clear_button.click(self.clear, None, outputs, api_name="clear", concurrency_limit=None,
                               cancels=[send_event, regenerate_event])
        return demo


def launch(engine: ChatEngine, *, host: str = "127.0.0.1", port: int = 7860, title: str = "LLaVA-ViTSplit",
           defaults: GenerationConfig | None = None, max_queue: int = 64, block: bool = True):
    """Build the page around `engine` and serve it; returns the Blocks (call `.close()` to stop)."""
    demo = ChatDemo(engine, title=title, defaults=defaults).build()
    demo.queue(max_size=max_queue)
    demo.launch(
        server_name=host, server_port=port, share=False, show_error=True, ssr_mode=False,
        max_file_size=MAX_UPLOAD, prevent_thread_lock=not block, quiet=False,
        footer_links=["api"],
        # System fonts: the default theme would fetch web fonts, and the demo must work offline.
        theme=gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"]),
    )
    return demo


# -- command line -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        defaults = chat_generation_config(args.temperature, args.top_p, args.max_new_tokens)
    except ChatInputError as error:
        raise SystemExit(f"llava-vitsplit demo: {error}") from None
    engine = load_engine(args)
    launch(engine, host=args.host, port=args.port, title=f"LLaVA-ViTSplit · {engine.model_name}",
           defaults=defaults, max_queue=args.max_queue)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llava_vitsplit.serve.gradio_demo", description=__doc__.split("\n")[0])
    add_demo_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
