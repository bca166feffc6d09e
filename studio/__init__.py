"""Creative Studio: the application. Products, audiences, prompts, rendering, store,
selection API and CLI meet here; the libraries ``pipelines``, ``reward`` and ``bandit``
stay independent of it and of each other."""

__version__ = "0.1.0"
