"""The ``studio`` command line (also ``python -m studio``).

Each command is a thin face over ``studio`` functions; ``main.py`` holds the root app and
wires the command groups (one module, one ``typer.Typer()`` each); ``errors.py`` turns the
library's errors into one ``error:`` line and an exit code. Heavy imports (torch,
diffusers, transformers) happen inside the commands, so ``studio --help`` stays light.
"""

from .main import app

__all__ = ["app"]
