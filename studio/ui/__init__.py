"""The web UI's side of the studio: ``workspace``, a marketer's session (``app.py`` at the
repository root is its Gradio face)."""
