"""Simulation: the hidden-truth audience world, the past it trains priors on, simulated
campaigns with their baselines and oracles, and the evaluation over many worlds.

Nothing outside this package imports it (a test checks it): the reward model, the bandit,
serving and prompt writing never see the world's truth.
"""
