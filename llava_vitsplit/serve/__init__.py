"""Chatting with a trained model: the Gradio demo, the terminal chat and the engine they share."""
