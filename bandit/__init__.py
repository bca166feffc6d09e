"""LinUCB contextual bandit, its persistence format and offline policy evaluation.

A library: it never imports ``studio``, ``pipelines`` or ``reward``.
"""

from .errors import BanditError
from .linucb import POLICIES, LinUCB
from .records import BatchDecision, CTRPrior, Decision, ParameterPrior

__all__ = ["POLICIES", "BanditError", "BatchDecision", "CTRPrior", "Decision", "LinUCB",
           "ParameterPrior"]
