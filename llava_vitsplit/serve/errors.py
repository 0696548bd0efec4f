"""The one error type the chat front ends show to the user as a chat message."""


class ChatInputError(ValueError):
    """Input the model cannot take (not an image, empty message, prompt too long, ...).

    The message is written for the person chatting: it says what is wrong and what to do.
    """
