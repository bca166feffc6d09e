"""The error the application raises for bad input (tables, files, options)."""


class StudioError(ValueError):
    """Bad input to a studio function; the message says what and, where it helps, how to
    fix it. Faces show it as one line (the CLI exits with code 2)."""
