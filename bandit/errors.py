"""The error the bandit library raises for bad configuration, input or files."""


class BanditError(ValueError):
    """A bad configuration, context, reward, arm, or model file; the message says which."""
