"""Using a trained model: the Gradio demo, the terminal chat, the engine they share, and the
OpenAI-compatible API server (`serve.api`)."""
