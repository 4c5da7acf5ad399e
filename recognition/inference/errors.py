"""Errors the inference core raises for input it cannot use (turned into 4xx by adapters)."""


class InvalidMedia(ValueError):
    """The bytes are not a usable image/audio/video; ``str(exc)`` is a message for the person."""
