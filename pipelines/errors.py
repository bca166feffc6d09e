"""The one error type the image library raises for bad input.

Callers (the CLI, the API, the UI) turn it into a one-line message: it always says what
was wrong and, where it helps, what to do instead.
"""


class InputError(ValueError):
    """An input image, mask, size or option that the pipeline cannot use."""
