"""LinUCB contextual bandit, its persistence format and offline policy evaluation.

A library: it never imports ``studio``, ``pipelines`` or ``reward``. Its contents arrive
with the bandit issue; the package exists so the layout of DESIGN.md holds.
"""
