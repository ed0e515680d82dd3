"""The mapper: descriptor values (slider positions) → model coefficients, evaluated in pure numpy.

The slider path must run inside Blender, whose Python ships numpy but never torch, and must answer a
slider drag in far less than a frame: so a trained mapper is stored as plain arrays and evaluated here with
three matrix products. Training (torch) lives in :mod:`.train` and is imported only when asked for.

A mapper file is one ``.npz`` read with ``allow_pickle=False``:

- ``header``: a 0-d unicode array holding JSON: format and version, the descriptors (name, kind, unit,
  slider range and default), the model it belongs to (name, vertex count, checksum, coefficient count and
  bounds), the scorers that produced the descriptor values (CLIP model, weights and prompt template; metric
  definition), the dataset it was trained from, the training settings and the training / evaluation figures,
  and a checksum over every array below.
- ``input_mean`` / ``input_std`` (d,), ``output_mean`` / ``output_std`` (n,): the normalisations used in
  training (inputs are z-scored, outputs are predicted z-scored and mapped back).
- ``weight_0`` … ``weight_{L-1}`` with shape (in, out) (the transpose of torch's ``Linear.weight``, so the
  forward pass is ``x @ W + b``), and ``bias_0`` … ``bias_{L-1}`` (out,); ReLU between layers, none after the
  last. Trained weights are rounded to float16 precision and stored as float16 (they load as float32):
  half the bytes of a file the extension ships, for answers that differ by about 1e-3 std.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import npzfile
from ..errors import MapperError

if TYPE_CHECKING:
    from ..models.linear import LinearMorphableModel

FORMAT = "semantify-mapper"
FORMAT_VERSION = 1
DESCRIPTOR_KINDS = ("word", "metric", "attribute")
MEASURED_KINDS = ("metric", "attribute")
"""Descriptors whose value can be read off a body without CLIP: measurements (a tape on the mesh) and
attributes (MakeHuman shape settings, read by the model's attribute regressor)."""
WORD_UNIT = "cosine"
NORMALISATION_ARRAYS = ("input_mean", "input_std", "output_mean", "output_std")


MAPPER_FILE = npzfile.FileKind(
    FORMAT, FORMAT_VERSION, "mapper file", "Train or copy the mapper again.", MapperError
)


# ------------------------------------------------------------------------------------------ descriptors
@dataclass(frozen=True)
class Descriptor:
    """One slider: what it means (``kind`` word, metric or attribute, ``unit``) and its range and default.

    Words are CLIP cosine scores (unit "cosine"); metrics are measurements in SI units ("m", "kg");
    attributes are MakeHuman shape settings (gender, muscle, weight, proportions in [0, 1]; age in "years").
    The range and default come from the training data (2nd–98th percentile and median), so that every
    position of the slider is a value the mapper has seen.
    """

    name: str
    kind: str
    unit: str
    low: float
    high: float
    default: float

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the numbers once (JSON and numpy floats alike)
        for attribute in ("low", "high", "default"):
            set_(self, attribute, float(getattr(self, attribute)))
        if not str(self.name).strip():
            raise MapperError("A descriptor needs a non-empty name.")
        if self.kind not in DESCRIPTOR_KINDS:
            raise MapperError(
                f"Descriptor '{self.name}' has kind '{self.kind}'; expected one of "
                f"{', '.join(DESCRIPTOR_KINDS)}."
            )
        if not all(np.isfinite([self.low, self.high, self.default])):
            raise MapperError(f"Descriptor '{self.name}' has a non-finite range or default.")
        if not self.low < self.high:
            raise MapperError(
                f"Descriptor '{self.name}' has the empty range [{self.low}, {self.high}]: its values do not "
                "vary in the data, so it cannot drive a slider. Leave it out."
            )
        if not self.low <= self.default <= self.high:
            raise MapperError(
                f"Descriptor '{self.name}' has default {self.default} outside its range "
                f"[{self.low}, {self.high}]."
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "unit": self.unit,
            "low": self.low,
            "high": self.high,
            "default": self.default,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Descriptor:
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            unit=str(data["unit"]),
            low=data["low"],
            high=data["high"],
            default=data["default"],
        )


# ----------------------------------------------------------------------------------------------- mapper
@dataclass(frozen=True, eq=False)  # arrays inside: compare checksums, not objects
class Mapper:
    """A trained MLP from ``d`` descriptor values to ``n`` coefficients, plus everything needed to trust it.

    ``weights`` is a list of ``(W, b)`` pairs with ``W`` shaped (in, out); ``metadata`` is the JSON header
    (model identity, scorers, dataset, training settings and figures). Build one with
    :func:`semantify_engine.mapper.train.train_mapper` or :func:`load_mapper`.
    """

    descriptors: tuple[Descriptor, ...]
    input_mean: np.ndarray
    input_std: np.ndarray
    output_mean: np.ndarray
    output_std: np.ndarray
    weights: tuple[tuple[np.ndarray, np.ndarray], ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._validate()

    # ---------------------------------------------------------------------------------- identity
    @property
    def descriptor_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.descriptors)

    @property
    def input_count(self) -> int:
        return len(self.descriptors)

    @property
    def coefficient_count(self) -> int:
        return int(self.output_mean.shape[0])

    @property
    def lows(self) -> np.ndarray:
        return np.array([d.low for d in self.descriptors], dtype=np.float32)

    @property
    def highs(self) -> np.ndarray:
        return np.array([d.high for d in self.descriptors], dtype=np.float32)

    @property
    def defaults(self) -> np.ndarray:
        """The slider vector with every descriptor at its default (the median of the training data)."""
        return np.array([d.default for d in self.descriptors], dtype=np.float32)

    @property
    def model_info(self) -> dict[str, Any]:
        return dict(self.metadata.get("model", {}))

    def checksum(self) -> str:
        """A content hash of every array (normalisations and weights), recorded in the file's header."""
        digest = hashlib.sha256()
        for name, array in self._named_arrays():
            array = np.ascontiguousarray(array)
            digest.update(f"{name}{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()[:16]

    # ------------------------------------------------------------------------------------ forward
    def coefficients(self, values: Any, clamp: bool = True) -> np.ndarray:
        """Coefficients ``(N, n)`` float32 for slider values ``(N, d)``; ``(n,)`` for one vector ``(d,)``.

        Input policy (the slider path must never produce a broken mesh):

        - a NaN is refused (:class:`MapperError` naming the descriptor): it means a bug upstream;
        - a value outside a descriptor's ``[low, high]`` (±inf included) is clamped to the nearest end when
          ``clamp`` is true (the default: the mapper only knows that range, and a typed value past the end
          should behave like the slider's end), refused when ``clamp=False``;
        - a wrong number of values is refused.

        The coefficients are then clipped to the model's coefficient bounds when the model has them
        (blendshape weights in [0, 1]); with finite weights and clamped inputs the output is always finite.
        """
        batch, single = self._checked_inputs(values, clamp)
        out = self._forward(batch)
        return out[0] if single else out

    __call__ = coefficients

    def evaluate(self, values: np.ndarray) -> np.ndarray:
        """The network on ``(N, d)`` values as they are, without the input policy (no clamping, no checks).

        For evaluation on data (training figures, tests) where values outside the slider ranges are real
        samples to be predicted, not slider positions. The output is still clipped to the model's bounds.
        """
        batch = np.array(values, dtype=np.float32, ndmin=2)
        if batch.ndim != 2 or batch.shape[1] != self.input_count:
            raise MapperError(f"Expected values of shape (N, {self.input_count}); got {batch.shape}.")
        return self._forward(batch)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        hidden = (batch - self.input_mean) / self.input_std
        last = len(self.weights) - 1
        for index, (weight, bias) in enumerate(self.weights):
            hidden = hidden @ weight
            hidden += bias
            if index < last:
                np.maximum(hidden, 0.0, out=hidden)
        out = hidden * self.output_std
        out += self.output_mean
        bounds = self._coefficient_bounds
        if bounds is not None:
            np.clip(out, bounds[0], bounds[1], out=out)
        return out

    def _checked_inputs(self, values: Any, clamp: bool) -> tuple[np.ndarray, bool]:
        try:
            with np.errstate(over="ignore"):  # 1e300 becomes inf in float32, then clamped like any overshoot
                array = np.array(
                    values, dtype=np.float32
                )  # a copy: clamping never touches the caller's array
        except (TypeError, ValueError) as error:
            raise MapperError(
                f"Slider values must be numbers ({self._expected()}); got {values!r}."
            ) from error
        single = array.ndim == 1
        if single:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self.input_count:
            raise MapperError(
                f"This mapper takes {self.input_count} values ({self._expected()}), one per descriptor; got "
                f"an array of shape {np.shape(values)}."
            )
        nan = np.isnan(array)
        if nan.any():
            row, column = (int(i) for i in np.argwhere(nan)[0])
            raise MapperError(
                f"Value for descriptor '{self.descriptors[column].name}' is NaN (sample {row}); give a "
                f"number in [{self.descriptors[column].low:g}, {self.descriptors[column].high:g}]."
            )
        lows, highs = self._lows, self._highs
        if clamp:
            np.clip(array, lows, highs, out=array)
        else:
            outside = (array < lows) | (array > highs)
            if outside.any():
                row, column = (int(i) for i in np.argwhere(outside)[0])
                descriptor = self.descriptors[column]
                raise MapperError(
                    f"Value {array[row, column]:g} for descriptor '{descriptor.name}' (sample {row}) is "
                    f"outside its range [{descriptor.low:g}, {descriptor.high:g}]; pass a value inside it, "
                    "or clamp=True."
                )
        return array, single

    def _expected(self) -> str:
        return ", ".join(self.descriptor_names)

    # -------------------------------------------------------------------------------- validation
    def _named_arrays(self) -> list[tuple[str, np.ndarray]]:
        arrays = [(name, getattr(self, name)) for name in NORMALISATION_ARRAYS]
        for index, (weight, bias) in enumerate(self.weights):
            arrays += [(f"weight_{index}", weight), (f"bias_{index}", bias)]
        return arrays

    def _validate(self) -> None:
        """Normalise dtypes, check that the layers chain, and cache what the forward pass needs."""
        set_ = object.__setattr__  # frozen dataclass: normalise once, at construction
        set_(self, "descriptors", tuple(self.descriptors))
        if not self.descriptors:
            raise MapperError("A mapper needs at least one descriptor; none were given.")
        names = self.descriptor_names
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise MapperError(f"Descriptor names must be unique; repeated: {', '.join(duplicates)}.")
        for name in NORMALISATION_ARRAYS:
            set_(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float32).reshape(-1))
        layers = tuple(
            (np.ascontiguousarray(w, dtype=np.float32), np.ascontiguousarray(b, dtype=np.float32).reshape(-1))
            for w, b in self.weights
        )
        set_(self, "weights", layers)
        set_(self, "metadata", dict(self.metadata))
        self._check_shapes()
        for name, array in self._named_arrays():
            if not np.all(np.isfinite(array)):
                raise MapperError(f"Mapper array '{name}' holds NaN or infinite values; retrain the mapper.")
        if np.any(self.input_std <= 0) or np.any(self.output_std <= 0):
            raise MapperError("Mapper normalisation has a zero or negative standard deviation.")
        set_(self, "_lows", self.lows)
        set_(self, "_highs", self.highs)
        set_(self, "_coefficient_bounds", coefficient_bounds_from(self.metadata, self.coefficient_count))

    def _check_shapes(self) -> None:
        d, n = self.input_count, self.output_mean.shape[0]
        if self.input_mean.shape != (d,) or self.input_std.shape != (d,):
            raise MapperError(f"Input normalisation must hold {d} values, one per descriptor.")
        if self.output_std.shape != (n,) or n == 0:
            raise MapperError("Output normalisation arrays differ in length or are empty.")
        if not self.weights:
            raise MapperError("A mapper needs at least one layer.")
        width = d
        for index, (weight, bias) in enumerate(self.weights):
            if weight.ndim != 2 or weight.shape[0] != width or bias.shape != (weight.shape[1],):
                raise MapperError(
                    f"Mapper layer {index} has weight {weight.shape} and bias {bias.shape}; expected a "
                    f"weight ({width}, m) and a bias (m,)."
                )
            width = weight.shape[1]
        if width != n:
            raise MapperError(
                f"The last mapper layer gives {width} outputs, but {n} coefficients are expected."
            )


def coefficient_bounds_from(metadata: dict[str, Any], count: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The model's coefficient bounds recorded in the metadata, as (low, high) arrays, or None."""
    bounds = metadata.get("model", {}).get("coefficient_bounds")
    if bounds is None:
        return None
    array = np.asarray(bounds, dtype=np.float32)
    if array.shape != (count, 2):
        raise MapperError(
            f"The mapper's model coefficient bounds have shape {array.shape}; expected ({count}, 2)."
        )
    return np.ascontiguousarray(array[:, 0]), np.ascontiguousarray(array[:, 1])


# ---------------------------------------------------------------------------------------- model identity
def model_identity(model: LinearMorphableModel, coefficient_count: int) -> dict[str, Any]:
    """What a mapper records about its model: enough to refuse another model, and its coefficient bounds."""
    bounds = model.coefficient_bounds
    return {
        "name": model.name,
        "kind": model.kind,
        "vertex_count": model.vertex_count,
        "checksum": model.checksum(),
        "coefficient_count": int(coefficient_count),
        "coefficient_bounds": None if bounds is None else bounds[:coefficient_count].tolist(),
    }


def check_model(mapper: Mapper, model: LinearMorphableModel) -> None:
    """Refuse to drive ``model`` with a mapper trained for another one: its coefficients mean other things."""
    recorded = mapper.model_info
    actual = {"name": model.name, "vertex_count": model.vertex_count, "checksum": model.checksum()}
    expected = {key: recorded.get(key) for key in actual}
    if expected != actual:
        raise MapperError(
            f"This mapper was trained for model '{expected['name']}' ({expected['vertex_count']} vertices, "
            f"checksum {expected['checksum']}), not for '{actual['name']}' ({actual['vertex_count']} "
            f"vertices, checksum {actual['checksum']}). Use a mapper trained for '{actual['name']}', or "
            "train one with 'semantify mapper train' on a dataset of that model."
        )
    if mapper.coefficient_count > model.component_count:
        raise MapperError(
            f"This mapper gives {mapper.coefficient_count} coefficients but model '{model.name}' has only "
            f"{model.component_count} components."
        )


# ------------------------------------------------------------------------------------------------ files
def save_mapper(mapper: Mapper, path: str | os.PathLike[str]) -> Path:
    """Write ``mapper`` to ``path`` atomically (never a torn file) and return the path."""
    path = Path(path)
    header = {
        **mapper.metadata,
        "descriptors": [d.to_json() for d in mapper.descriptors],
        "layers": [list(w.shape) for w, _ in mapper.weights],
        "checksum": mapper.checksum(),
    }
    arrays = {name: npzfile.compact(array) for name, array in mapper._named_arrays()}
    return npzfile.write(path, MAPPER_FILE, header, arrays)


def read_mapper_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header alone (cheap: for listing mappers and for ``semantify mapper info``)."""
    return npzfile.read(path, MAPPER_FILE, header_only=True)[0]


def load_mapper(path: str | os.PathLike[str]) -> Mapper:
    """Load a mapper file, refusing anything that is not a complete, unaltered mapper file."""
    path = Path(path)
    header, arrays = npzfile.read(path, MAPPER_FILE)
    for key, expected in (("layers", list), ("descriptors", list), ("model", dict)):
        if key in header and not isinstance(header[key], expected):
            raise MapperError(
                f"{path} has a malformed header: '{key}' is a {type(header[key]).__name__}, not a "
                f"{expected.__name__}; it is damaged. Train or copy the mapper again."
            )
    layer_count = len(header.get("layers", []))
    names = [*NORMALISATION_ARRAYS]
    for index in range(layer_count):
        names += [f"weight_{index}", f"bias_{index}"]
    missing = [name for name in names if name not in arrays]
    if missing or layer_count == 0:
        raise MapperError(f"{path} lacks the arrays {', '.join(missing) or 'of its layers'}; it is damaged.")
    structural = ("descriptors", "layers", "format", "format_version", "checksum")
    metadata = {key: value for key, value in header.items() if key not in structural}
    try:
        mapper = Mapper(
            descriptors=tuple(Descriptor.from_json(item) for item in header["descriptors"]),
            **{name: arrays[name] for name in NORMALISATION_ARRAYS},
            weights=tuple((arrays[f"weight_{i}"], arrays[f"bias_{i}"]) for i in range(layer_count)),
            metadata=metadata,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise MapperError(f"{path} has a malformed header ({error!r}); it is damaged.") from error
    except MapperError as error:
        raise MapperError(f"{path}: {error}") from error
    if mapper.checksum() != header.get("checksum"):
        raise MapperError(
            f"{path} does not match its own checksum (header {header.get('checksum')}, arrays "
            f"{mapper.checksum()}): the file was altered or damaged. Train or copy the mapper again."
        )
    far = _far_output(mapper)
    if far is not None:
        raise MapperError(f"{path}: {far}. Its weights are damaged or it was trained badly: train it again.")
    return mapper


FAR_OUTPUT_STDS = 100.0
"""A mapper's answer this many of its training targets' standard deviations from their mean is no shape
of its model (the shipped mappers stay within 6.2 at every corner of their slider box)."""
PROBED_CORNERS = 64


def _far_output(mapper: Mapper) -> str | None:
    """What is wrong with the mapper's answers at its defaults, its sliders' ends and its box's corners (a
    sample of them past 64), or None: a checksum proves a file unaltered, not that its weights make sense."""
    d = mapper.input_count
    defaults = mapper.defaults.astype(np.float32)
    probes = [defaults[None]]
    for index in range(d):
        for end in (mapper.lows[index], mapper.highs[index]):
            probe = defaults.copy()
            probe[index] = end
            probes.append(probe[None])
    rng = np.random.default_rng(0)
    corners = rng.integers(0, 2, size=(PROBED_CORNERS, d)) if 2**d > PROBED_CORNERS else None
    if corners is None:
        corners = (np.arange(2**d)[:, None] >> np.arange(d)) & 1
    probes.append(np.where(corners == 1, mapper.highs, mapper.lows).astype(np.float32))
    values = np.concatenate(probes)
    with np.errstate(over="ignore", invalid="ignore"):
        out = mapper.coefficients(values)
        distance = np.abs(out - mapper.output_mean) / mapper.output_std
    if not np.isfinite(out).all():
        return "its sliders give NaN or infinite coefficients"
    worst = float(distance.max())
    if worst > FAR_OUTPUT_STDS:
        return (
            f"its sliders give coefficients {worst:.3g} standard deviations from its training data "
            f"(at most {FAR_OUTPUT_STDS:g} make a shape of its model)"
        )
    return None


def describe(mapper: Mapper) -> list[str]:
    """Human-readable lines about a mapper (``semantify mapper info``)."""
    model = mapper.model_info
    figures = mapper.metadata.get("figures", {})
    lines = [
        f"model: {model.get('name')} ({model.get('vertex_count')} vertices, "
        f"checksum {model.get('checksum')}), "
        f"{mapper.coefficient_count} coefficients",
        "layers: " + " → ".join([str(mapper.input_count), *(str(w.shape[1]) for w, _ in mapper.weights)]),
        "descriptors:",
    ]
    for d in mapper.descriptors:
        lines.append(
            f"  {d.name:<24} {d.kind:<6} [{d.low:.4g}, {d.high:.4g}] default {d.default:.4g} {d.unit}"
        )
    if figures.get("validation_mse") is not None:
        lines.append(
            f"validation: MSE {figures['validation_mse']:.4g} in normalised units (1 ≈ always predicting the "
            f"mean), coefficient RMSE {figures['validation_coefficient_rmse']:.4g} "
            f"(mean-only {figures['validation_baseline_rmse']:.4g}), {figures['validation_samples']} samples"
        )
    if figures.get("wall_s") is not None:
        lines.append(f"training: {figures['wall_s']:.1f} s on {figures.get('train_samples')} samples")
    errors = figures.get("metric_slider_errors") or {}
    for descriptor in mapper.descriptors:
        error = errors.get(descriptor.name)
        if error is not None:
            lines.append(_slider_error_line(descriptor, error))
    for name, ranges in (figures.get("narrowed_to_reach") or {}).items():
        low, high = ranges["data_range"]
        lines.append(
            f"slider '{name}' ends where its plausible reach ends (its data spanned {low:.4g}–{high:.4g}): "
            "past it no plausible body meets the request"
        )
    plausibility = figures.get("plausibility")
    if plausibility and "skipped" not in plausibility:
        corners, random = plausibility["corners"], plausibility["random"]
        verdict = "inside" if plausibility["inside"] else "OUTSIDE"
        lines.append(
            f"plausibility (percentile of the model's source bodies, region {plausibility['region']:g} %): "
            f"slider ends ≤ p{plausibility['slider_ends_max']:.1f}, {corners['count']} box corners ≤ "
            f"p{corners['max']:.1f}, {random['count']} random settings ≤ p{random['max']:.1f}: {verdict}"
        )
    weight = mapper.metadata.get("training", {}).get("consistency")
    guard = mapper.metadata.get("training", {}).get("plausibility_guard")
    if guard:
        lines.append(
            f"plausibility guard: on (keeps answers within the source population's {guard['region']:g}th "
            "percentile; where a request has no plausible body, the slider stops short)"
        )
    if figures.get("measurement_surrogate"):
        lines.append(f"measurement consistency: on (weight {weight:g}), measured where the data is thin")
    lines += [str(note) for note in figures.get("notes", [])]
    return lines


def _slider_error_line(descriptor: Descriptor, error: dict[str, Any]) -> str:
    """One line of ``mapper info``: how well a measured slider hits its value and what it reaches."""
    scale, unit = (1000.0, "mm") if error["unit"] == "m" else (1.0, error["unit"])
    shown = (lambda value: f"{value * scale:.1f} {unit}".rstrip()) if unit else (lambda value: f"{value:.3f}")
    cross_talk = error.get("max_cross_talk")
    kind = "measurements" if error.get("kind", "metric") == "metric" else "attributes"
    moves = "" if cross_talk is None else f", moves the other {kind} ≤ {cross_talk:.1%} of their range"
    line = (
        f"slider '{descriptor.name}' hits its value within {shown(error['mean_abs_error'])} on average "
        f"(max {shown(error['max_abs_error'])}{moves}; others at their defaults)"
    )
    reached = error.get("achieved_range")
    if reached is not None:
        span = f" {descriptor.unit}" if descriptor.unit else ""
        line += (
            f"; reaches {reached[0]:.4g}–{reached[1]:.4g}{span} of its {descriptor.low:.4g}–"
            f"{descriptor.high:.4g}{span}"
        )
    return line


def data_range(mapper: Mapper, name: str) -> tuple[float, float] | None:
    """The range a slider's data spanned, when the slider was cut to its plausible reach (else None)."""
    narrowed = (mapper.metadata.get("figures", {}).get("narrowed_to_reach") or {}).get(name)
    if not narrowed:
        return None
    low, high = narrowed["data_range"]
    return float(low), float(high)


def stack_values(mapper: Mapper, values: dict[str, float] | Sequence[float]) -> np.ndarray:
    """Slider values given by name (missing ones at their default) or in descriptor order, as ``(d,)``."""
    if isinstance(values, dict):
        unknown = sorted(set(values) - set(mapper.descriptor_names))
        if unknown:
            raise MapperError(
                f"Unknown descriptor(s) {', '.join(unknown)}; this mapper has "
                f"{', '.join(mapper.descriptor_names)}."
            )
        vector = mapper.defaults.copy()
        for index, name in enumerate(mapper.descriptor_names):
            if name in values:
                vector[index] = values[name]
        return vector
    return np.asarray(values, dtype=np.float32)
