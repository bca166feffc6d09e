"""The CTR reward model for creatives: features from pixels and prompts, a calibrated
logistic model with context × creative interactions, metrics, and data loaders.

A library: it never imports ``studio``, ``pipelines`` or ``bandit``.
"""

from .errors import RewardError
from .features import IMAGE_FEATURES, FeatureCache, image_features, text_features
from .model import CTRModel, evaluate_scores, expected_calibration_error, pairwise_accuracy
from .refit import refit

__all__ = ["IMAGE_FEATURES", "CTRModel", "FeatureCache", "RewardError", "evaluate_scores",
           "expected_calibration_error", "image_features", "pairwise_accuracy", "refit", "text_features"]
