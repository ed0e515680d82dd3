"""The model file: one ``.npz`` of arrays plus a JSON header, loaded without pickle.

Layout (all arrays little-endian, stored compressed):

- ``header``: a 0-d unicode array holding JSON: format version, name, kind, licence, source,
  units, up axis, vertex / face / component counts, component names, checksum, and free ``info``.
- ``template`` (V, 3) float32, ``faces`` (F, 3) int32, ``basis`` (K, V, 3) float32, ``std`` (K,).
- optional ``coefficient_bounds`` (K, 2); optional skeleton: ``joint_template`` (J, 3),
  ``joint_basis`` (K, J, 3), ``joint_parents`` (J,), ``skin_weights`` (V, J); joint names in the header.
- optional source bank (:mod:`.bank`): ``bank_coefficients`` (N, K), ``bank_settings`` (N, S),
  ``bank_populations`` (N,), optionally ``bank_smooth`` (N, K), described (names, units, ranges,
  plausibility calibration, checksum) by the header's ``bank``; optional attribute regressor
  ``attribute_weights`` (F, S), described by ``attributes``.

Float arrays whose values are exactly float16 numbers (the bundled bases are rounded to float16 precision
when generated, the banks' coefficients too) are stored as float16, half the bytes; they load as float32,
value for value, so checksums do not see the difference.

Loading checks the checksum in the header against the arrays, so a truncated or edited file is named
as such instead of producing a subtly wrong mesh.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import npzfile
from ..errors import ModelFileError
from .bank import AttributeRegressor, SourceBank
from .linear import LinearMorphableModel, Skeleton

FORMAT = "semantify-model"
FORMAT_VERSION = 1
MODEL_FILE = npzfile.FileKind(
    FORMAT, FORMAT_VERSION, "model file", "Re-export or re-download the model file.", ModelFileError
)


def save_model(model: LinearMorphableModel, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``path`` atomically and return the path."""
    path = Path(path)
    header: dict[str, Any] = {
        "name": model.name,
        "kind": model.kind,
        "units": "metres",
        "up_axis": "Z",
        "front": "-Y",
        "vertex_count": model.vertex_count,
        "face_count": int(model.faces.shape[0]),
        "component_count": model.component_count,
        "component_names": list(model.component_names),
        "checksum": model.checksum(),
        "info": model.info,
    }
    arrays: dict[str, np.ndarray] = {
        "template": model.template,
        "faces": model.faces,
        "basis": model.basis,
        "std": model.std,
    }
    if model.coefficient_bounds is not None:
        arrays["coefficient_bounds"] = model.coefficient_bounds
    if model.skeleton is not None:
        header["joint_names"] = list(model.skeleton.names)
        arrays["joint_template"] = model.skeleton.joint_template
        arrays["joint_basis"] = model.skeleton.joint_basis
        arrays["joint_parents"] = model.skeleton.parents
        arrays["skin_weights"] = model.skeleton.skin_weights
    if model.bank is not None:
        header["bank"] = model.bank.header()
        arrays["bank_coefficients"] = model.bank.coefficients
        arrays["bank_settings"] = model.bank.settings
        arrays["bank_populations"] = model.bank.populations
        if model.bank.smooth is not None:
            arrays["bank_smooth"] = model.bank.smooth
    if model.attributes is not None:
        header["attributes"] = model.attributes.header()
        arrays["attribute_weights"] = model.attributes.weights
    return npzfile.write(
        path, MODEL_FILE, header, {name: npzfile.compact(array) for name, array in arrays.items()}
    )


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header alone (cheap: used to list models without loading their bases)."""
    return npzfile.read(path, MODEL_FILE, header_only=True)[0]


def load_model(path: str | os.PathLike[str]) -> LinearMorphableModel:
    """Load a model file, refusing anything that is not a complete, consistent model file."""
    path = Path(path)
    header, arrays = npzfile.read(path, MODEL_FILE)
    missing = [key for key in ("template", "faces", "basis", "std") if key not in arrays]
    if missing:
        raise ModelFileError(f"{path} lacks the arrays {', '.join(missing)}; it is not a model file.")
    skeleton = None
    if "joint_template" in arrays:
        skeleton = Skeleton(
            names=tuple(header.get("joint_names", [])),
            parents=arrays["joint_parents"],
            joint_template=arrays["joint_template"],
            joint_basis=arrays["joint_basis"],
            skin_weights=arrays["skin_weights"],
        )
    where = str(path)
    bank = SourceBank.from_file(header["bank"], arrays, where) if "bank" in header else None
    attributes = None
    if "attributes" in header:
        attributes = AttributeRegressor.from_file(header["attributes"], arrays, where)
    try:
        model = LinearMorphableModel(
            name=str(header["name"]),
            kind=str(header["kind"]),
            template=arrays["template"],
            faces=arrays["faces"],
            basis=arrays["basis"],
            std=arrays["std"],
            component_names=tuple(header["component_names"]),
            coefficient_bounds=arrays.get("coefficient_bounds"),
            skeleton=skeleton,
            info=dict(header.get("info", {})),
            bank=bank,
            attributes=attributes,
        )
    except ModelFileError as error:
        raise ModelFileError(f"{path}: {error}") from error
    if model.checksum() != header.get("checksum"):
        raise ModelFileError(
            f"{path} does not match its own checksum (header {header.get('checksum')}, arrays "
            f"{model.checksum()}): the file was altered or damaged. Re-export or re-download it."
        )
    return model
