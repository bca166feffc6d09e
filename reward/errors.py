"""The error the reward library raises for bad input, settings or model files."""


class RewardError(ValueError):
    """Bad features, logs, settings or model file; the message says which."""
