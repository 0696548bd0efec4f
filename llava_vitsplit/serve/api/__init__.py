"""An OpenAI-compatible chat-completions server (`llava-vitsplit serve`): protocol, batching, app."""
