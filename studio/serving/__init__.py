"""Serving: the selection service (``service``), how it decides (``config``), what it
refuses (``faults``), and its HTTP API (``api``)."""
