"""The source bank: the bodies a model was built from, with the exact settings that made them.

A PCA basis says what shapes a model *can* make; it says nothing about which of them are people. The bodies
the PCA was fitted on do: a bundled anny body ships a few thousand of them as coefficients, each with the
MakeHuman shape settings anny made it from (gender, age in years, muscle, weight, height, proportions).
Three things are built on that bank, each in its own module:

- plausibility (:mod:`.plausibility`): how far a shape is from the bodies of the bank;
- sampling (``--scheme bank``): datasets drawn from real bodies instead of a coefficient box;
- attributes (:class:`AttributeRegressor`): sliders for the shape settings themselves, learned from the
  bank's exact labels, with no CLIP.

Everything here is numpy; the regressor has a torch twin for training.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelFileError

if TYPE_CHECKING:
    import torch

ATTRIBUTE_SETTINGS = ("gender", "age", "muscle", "weight", "proportions")
"""The shape settings offered as attribute sliders. anny's height setting is left out on purpose: the height
measurement (metres) says the same thing in units an artist can check with a tape."""


SETTING_ENDS = {"gender": ("male", "female")}
"""What the low and high ends of a unitless shape setting mean where its name does not say (more muscle,
more weight): anny's gender 0 is male, and a number alone tells an artist nothing about the direction."""


def setting_ends(name: str) -> tuple[str, str] | None:
    """The words for the low and high end of the shape setting ``name``, or None."""
    return SETTING_ENDS.get(name)


@dataclass(frozen=True)
class Setting:
    """One shape setting recorded for every bank body: its name, unit and the population's range."""

    name: str
    unit: str
    low: float
    high: float

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "low": self.low, "high": self.high}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Setting:
        return cls(str(data["name"]), str(data["unit"]), float(data["low"]), float(data["high"]))


@dataclass(frozen=True, eq=False)
class SourceBank:
    """Bank bodies as model coefficients ``(N, K)`` and their settings ``(N, S)``.

    ``populations`` says which sub-population each body came from (an index into ``population_names``:
    anny's realistic adults, or shape settings uniform over the adult range). ``plausibility`` holds the
    calibration :mod:`.plausibility` needs (method, parameters, quantiles of held-out bodies), written when
    the model is generated, because a bank member's distance to the bank is zero and cannot calibrate it.

    ``smooth`` (optional, ``(N, K)``) is each body's settings made by anny *without* its local changes (the
    individual detail: nose, limb lengths, ...). It is what a setting means on its own, so attribute
    sliders learn from it (the ``settings`` sampling scheme): learned from the detailed bodies, a slider is
    the average of bodies that differ in detail, and anny fitted to the bundled male body's sliders moved
    the other settings by up to 27.8 % of their range along a sweep; learned from these, by 2.4–19.2 %
    (anny's own bodies: 1.2–17.4 %; ``tools/validate_plausibility.py``).
    """

    coefficients: np.ndarray
    settings: np.ndarray
    setting_specs: tuple[Setting, ...]
    populations: np.ndarray
    population_names: tuple[str, ...]
    plausibility: dict[str, Any] = field(default_factory=dict)
    smooth: np.ndarray | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "coefficients", np.ascontiguousarray(self.coefficients, dtype=np.float32))
        if self.smooth is not None:
            set_(self, "smooth", np.ascontiguousarray(self.smooth, dtype=np.float32))
        set_(self, "settings", np.ascontiguousarray(self.settings, dtype=np.float32))
        set_(self, "populations", np.ascontiguousarray(self.populations, dtype=np.int8).reshape(-1))
        set_(self, "setting_specs", tuple(self.setting_specs))
        set_(self, "population_names", tuple(str(name) for name in self.population_names))

    @property
    def size(self) -> int:
        return int(self.coefficients.shape[0])

    @property
    def setting_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.setting_specs)

    def setting(self, name: str) -> np.ndarray:
        """The bank's values ``(N,)`` of one setting."""
        return self.settings[:, self.setting_names.index(name)]

    def check(self, component_count: int, where: str) -> None:
        """Refuse a bank whose arrays do not fit the model or each other (a damaged or edited file)."""
        count, width = self.coefficients.shape if self.coefficients.ndim == 2 else (0, -1)
        problems = []
        if count == 0 or width != component_count:
            problems.append(f"coefficients {self.coefficients.shape} for {component_count} components")
        if self.settings.shape != (count, len(self.setting_specs)):
            problems.append(
                f"settings {self.settings.shape} for {count} bodies, {len(self.setting_specs)} names"
            )
        if self.populations.shape != (count,) or (
            count
            and not 0
            <= int(self.populations.min())
            <= int(self.populations.max())
            < len(self.population_names)
        ):
            problems.append("population labels that do not name a population")
        if self.smooth is not None and self.smooth.shape != self.coefficients.shape:
            problems.append(f"smooth bodies {self.smooth.shape} for coefficients {self.coefficients.shape}")
        finite = [self.coefficients, self.settings, *([] if self.smooth is None else [self.smooth])]
        if not all(np.all(np.isfinite(array)) for array in finite):
            problems.append("NaN or infinite values")
        if problems:
            raise ModelFileError(f"{where}: its source bank is inconsistent ({'; '.join(problems)}).")

    def checksum(self) -> str:
        """A content hash of the bank's arrays (the model's checksum covers only its geometry)."""
        digest = hashlib.sha256()
        arrays = [self.coefficients, self.settings, self.populations]
        for array in arrays + ([] if self.smooth is None else [self.smooth]):  # older banks: same checksum
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]

    def header(self) -> dict[str, Any]:
        return {
            "settings": [spec.to_json() for spec in self.setting_specs],
            "populations": list(self.population_names),
            "plausibility": self.plausibility,
            "size": self.size,
            "checksum": self.checksum(),
        }

    @classmethod
    def from_file(cls, header: dict[str, Any], arrays: dict[str, np.ndarray], where: str) -> SourceBank:
        try:
            bank = cls(
                coefficients=arrays["bank_coefficients"],
                settings=arrays["bank_settings"],
                setting_specs=tuple(Setting.from_json(item) for item in header["settings"]),
                populations=arrays["bank_populations"],
                population_names=tuple(header["populations"]),
                plausibility=dict(header.get("plausibility", {})),
                smooth=arrays.get("bank_smooth"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{where}: its source bank is incomplete ({error!r}).") from error
        if bank.checksum() != header.get("checksum"):
            raise ModelFileError(
                f"{where}: its source bank does not match its checksum (the file was altered or damaged). "
                "Re-export or re-download the model file."
            )
        return bank


# ------------------------------------------------------------------------------------------- attributes
@dataclass(frozen=True, eq=False)
class AttributeRegressor:
    """Shape settings read back from coefficients: ridge regression on quadratic features.

    ``settings(c) = features(c) @ weights`` with ``features(c) = [1, c, c_i c_j for i <= j < quadratic]``,
    fitted on the bank's exact labels when the model is generated. It is what the engine uses to know what
    a shape's gender, age, muscle, weight and proportions are (attribute sliders' consistency in training,
    their fidelity in ``semantify evaluate``, word sliders' agreement with them); an independent check is
    anny itself, fitted to the body by the maintainers' ``tools/validate_plausibility.py``.
    """

    settings: tuple[Setting, ...]
    quadratic_components: int
    weights: np.ndarray  # (features, S)
    figures: dict[str, Any] = field(default_factory=dict)  # held-out R² and mean error per setting

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", np.ascontiguousarray(self.weights, dtype=np.float64))
        object.__setattr__(self, "settings", tuple(self.settings))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.settings)

    def feature_count(self, components: int) -> int:
        q = self.quadratic_components
        return 1 + components + q * (q + 1) // 2

    def predict(self, coefficients: np.ndarray) -> np.ndarray:
        """Settings ``(N, S)`` of coefficients ``(N, k)`` (missing components are zero, as in the model)."""
        batch = self._padded(np.atleast_2d(np.asarray(coefficients, dtype=np.float64)))
        return quadratic_features(batch, self.quadratic_components) @ self.weights

    def torch_predict(self, coefficients: torch.Tensor) -> torch.Tensor:
        """The same function in torch (gradients reach the coefficients)."""
        import torch

        components = self.weights.shape[0] - self.feature_count(0)
        if coefficients.shape[1] < components:
            padding = coefficients.new_zeros(coefficients.shape[0], components - coefficients.shape[1])
            coefficients = torch.cat([coefficients, padding], dim=1)
        rows, columns = np.triu_indices(self.quadratic_components)
        cross = coefficients[:, rows] * coefficients[:, columns]
        features = torch.cat([torch.ones_like(coefficients[:, :1]), coefficients, cross], dim=1)
        return features @ torch.as_tensor(self.weights, dtype=coefficients.dtype)

    def _padded(self, batch: np.ndarray) -> np.ndarray:
        components = self.weights.shape[0] - self.feature_count(0)
        if batch.shape[1] > components:
            raise ModelFileError(
                f"The attribute regressor reads {components} coefficients; got {batch.shape[1]}."
            )
        if batch.shape[1] < components:
            batch = np.hstack([batch, np.zeros((len(batch), components - batch.shape[1]))])
        return batch

    def header(self) -> dict[str, Any]:
        return {
            "settings": [spec.to_json() for spec in self.settings],
            "quadratic_components": self.quadratic_components,
            "figures": self.figures,
        }

    @classmethod
    def from_file(
        cls, header: dict[str, Any], arrays: dict[str, np.ndarray], where: str
    ) -> AttributeRegressor:
        try:
            regressor = cls(
                settings=tuple(Setting.from_json(item) for item in header["settings"]),
                quadratic_components=int(header["quadratic_components"]),
                weights=arrays["attribute_weights"],
                figures=dict(header.get("figures", {})),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{where}: its attribute regressor is incomplete ({error!r}).") from error
        if regressor.weights.ndim != 2 or regressor.weights.shape[1] != len(regressor.settings):
            raise ModelFileError(f"{where}: its attribute regressor's weights have the wrong shape.")
        return regressor


def attribute_values(
    model_bank: SourceBank | None,
    regressor: AttributeRegressor | None,
    coefficients: np.ndarray,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """The :data:`ATTRIBUTE_SETTINGS` ``(N, A)`` of samples: the bank's exact labels for bank ``rows``, else
    what the regressor reads from the coefficients (for samples that are not bank bodies)."""
    if rows is not None and model_bank is not None:
        columns = [model_bank.setting_names.index(name) for name in ATTRIBUTE_SETTINGS]
        return model_bank.settings[rows][:, columns].astype(np.float32)
    if regressor is None:
        raise ModelFileError("This model has no attribute regressor: it cannot read shape settings.")
    columns = [regressor.names.index(name) for name in ATTRIBUTE_SETTINGS]
    return regressor.predict(coefficients)[:, columns].astype(np.float32)


def attribute_specs(regressor: AttributeRegressor) -> tuple[Setting, ...]:
    """The :class:`Setting` of each attribute slider, in :data:`ATTRIBUTE_SETTINGS` order."""
    by_name = {spec.name: spec for spec in regressor.settings}
    return tuple(by_name[name] for name in ATTRIBUTE_SETTINGS)


def quadratic_features(coefficients: np.ndarray, quadratic_components: int) -> np.ndarray:
    """``[1, c, c_i c_j (i <= j < quadratic_components)]`` for each row of ``coefficients``."""
    rows, columns = np.triu_indices(quadratic_components)
    cross = coefficients[:, rows] * coefficients[:, columns]
    return np.hstack([np.ones((len(coefficients), 1)), coefficients, cross])


def fit_attribute_regressor(
    coefficients: np.ndarray,
    settings: np.ndarray,
    specs: tuple[Setting, ...],
    quadratic_components: int,
    ridge: float = 1e-3,
) -> AttributeRegressor:
    """Ridge regression of ``settings`` (N, S) on the quadratic features of ``coefficients`` (N, K).

    ``ridge`` is per row (the intercept is not shrunk): small next to thousands of rows, enough to keep the
    solve well conditioned where a cross term is barely excited.
    """
    features = quadratic_features(np.asarray(coefficients, np.float64), quadratic_components)
    gram = features.T @ features
    penalty = np.full(len(gram), ridge * len(features))
    penalty[0] = 0.0
    weights = np.linalg.solve(gram + np.diag(penalty), features.T @ np.asarray(settings, np.float64))
    return AttributeRegressor(settings=specs, quadratic_components=quadratic_components, weights=weights)
