"""The learned ranking: a linear score on the features of `matching.learning.features`.

Stored as plain coefficients (JSON, no pickle). The score shown is sigmoid(intercept + Σ β·x),
an estimate of how likely such a pair is a real partnership; the ranking only depends on the
linear part. Each feature's contribution to one match, β × (x − reference), orders its reasons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .features import FEATURES


@dataclass(frozen=True)
class LinearRanker:
    coefficients: dict[str, float]  # feature name → β (features it lacks count 0)
    intercept: float = 0.0
    reference: dict[str, float] = field(default_factory=dict)  # typical candidate's values (contributions)
    version: int = 0  # the stored model's version (0: not stored)

    def coef_vector(self) -> np.ndarray:
        return np.array([self.coefficients.get(name, 0.0) for name in FEATURES], dtype=np.float64)

    def reference_vector(self) -> np.ndarray:
        return np.array([self.reference.get(name, 0.0) for name in FEATURES], dtype=np.float64)

    def logit(self, x: np.ndarray) -> np.ndarray:
        """x: (n, len(FEATURES)) → the linear part."""
        return self.intercept + np.asarray(x, dtype=np.float64) @ self.coef_vector()

    def score(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(x)))

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """(n, len(FEATURES)): each feature's part of the logit, against the reference candidate."""
        return (np.asarray(x, dtype=np.float64) - self.reference_vector()) * self.coef_vector()

    def to_json(self) -> dict:
        return {
            "kind": "linear",
            "features": list(FEATURES),
            "coefficients": {k: float(v) for k, v in self.coefficients.items()},
            "intercept": float(self.intercept),
            "reference": {k: float(v) for k, v in self.reference.items()},
        }

    @classmethod
    def from_json(cls, data: dict, *, version: int = 0) -> LinearRanker:
        if data.get("kind") != "linear":
            raise ValueError("unknown model kind")
        coefficients = {str(k): float(v) for k, v in data["coefficients"].items() if str(k) in FEATURES}
        if not all(math.isfinite(v) for v in coefficients.values()):
            raise ValueError("non-finite coefficient")
        return cls(
            coefficients=coefficients,
            intercept=float(data.get("intercept", 0.0)),
            reference={str(k): float(v) for k, v in data.get("reference", {}).items() if str(k) in FEATURES},
            version=version,
        )
