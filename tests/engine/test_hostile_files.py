"""Every file loader against random bytes and valid-looking but wrong headers: one clear line, nothing else.

The loaders users' files reach: model files, mapper files, dataset manifests and chunks, and the owners'
SMPL-family files (.npz and .pkl). Whatever the bytes, each must raise the project's own error
(:class:`SemantifyError`) with a one-line message naming the file, never a traceback of another kind.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from semantify_engine.dataset.store import DatasetFolder
from semantify_engine.errors import SemantifyError
from semantify_engine.mapper import load_mapper
from semantify_engine.models import load_model
from semantify_engine.models.user_models import load_user_model

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
HEADER_KEYS = ("format_version", "layers", "descriptors", "model", "name", "kind", "checksum", "settings")
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def refused(load: Callable[[Path], object], path: Path) -> None:
    try:
        load(path)
    except SemantifyError as error:
        message = str(error)
        assert message and "\n" not in message.strip(), message
        return
    raise AssertionError(f"{path} was accepted")


def npz_with_header(path: Path, header: object, **arrays: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.savez(buffer, header=np.array(json.dumps(header)), **arrays)
    path.write_bytes(buffer.getvalue())
    return path


def user_folder(root: Path, name: str, data: bytes) -> Path:
    (root / name.split("/")[0]).mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(data)
    return root


@SETTINGS
@given(data=st.binary(max_size=3000))
@example(data=b"\x95\x00\x00\x00\x00\x00\x00\x00\x80")  # a pickle FRAME longer than any memory
def test_random_bytes_are_refused_by_every_loader_in_one_line(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "model.npz").write_bytes(data)
        refused(load_model, root / "model.npz")
        (root / "mapper.npz").write_bytes(data)
        refused(load_mapper, root / "mapper.npz")
        dataset = DatasetFolder(root / "data")
        dataset.folder.mkdir()
        dataset.manifest_path.write_bytes(data)
        refused(lambda _: dataset.read_manifest(), dataset.manifest_path)
        user_folder(root / "users", "smplx/SMPLX_NEUTRAL.npz", data)
        refused(lambda _: load_user_model("smplx-neutral", root / "users"), root)
        user_folder(root / "users", "smpl/SMPL_NEUTRAL.pkl", data)
        refused(lambda _: load_user_model("smpl-neutral", root / "users"), root)


@SETTINGS
@given(values=st.fixed_dictionaries({}, optional={key: JSON for key in HEADER_KEYS}))
def test_valid_looking_headers_with_wrong_values_are_refused_in_one_line(values: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        mapper = npz_with_header(
            root / "mapper.npz", {"format": "semantify-mapper", **values}, weight_0=np.ones((2, 2))
        )
        refused(load_mapper, mapper)
        model = npz_with_header(
            root / "model.npz", {"format": "semantify-model", **values}, template=np.ones((3, 3))
        )
        refused(load_model, model)
        dataset = DatasetFolder(root / "data")
        dataset.folder.mkdir()
        dataset.manifest_path.write_text(json.dumps({"format": "semantify-dataset", **values}))
        try:
            dataset.read_manifest()
        except SemantifyError as error:
            assert "\n" not in str(error)


@SETTINGS
@given(data=st.binary(max_size=2000), header=JSON)
def test_a_chunk_of_random_bytes_or_arrays_is_named_and_never_read(data: bytes, header: object) -> None:
    with tempfile.TemporaryDirectory() as folder:
        dataset = DatasetFolder(Path(folder) / "data")
        settings_ = {"samples": 8, "chunk_size": 4, "views": [{"name": "front"}]}
        dataset.create_or_check(settings_)
        dataset.chunk_folder.mkdir()
        dataset.chunk_path(0).write_bytes(data)
        npz_with_header(dataset.chunk_path(1), header, indices=np.arange(4, 8), coefficients=np.ones((3, 2)))
        for chunk in (0, 1):
            assert dataset.chunk_problem(chunk, settings_) is not None
            refused(lambda _, chunk=chunk: dataset.read_chunk(chunk), dataset.chunk_path(chunk))
        assert dataset.present_chunks() == [] and dataset.missing_chunks() == [0, 1]
