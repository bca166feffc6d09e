"""The CTR reward model for creatives (features, training, scoring).

A library: it never imports ``studio``, ``pipelines`` or ``bandit``. Its contents arrive
with the reward-model issue; the package exists so the layout of DESIGN.md holds.
"""
