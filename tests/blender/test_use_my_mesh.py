"""Use My Mesh: an artist's own mesh and shape keys become the model, exported as a model file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.blender import evaluated_vertices, make_mapper, make_mesh_with_shape_keys

from semantify_engine.models import load_model

bpy = pytest.importorskip("bpy")


# ------------------------------------------------------------------------------------- use my mesh
def test_use_my_mesh_makes_its_shape_keys_the_basis_and_exports_a_model_file(glue, tmp_path: Path) -> None:
    obj = make_mesh_with_shape_keys()
    assert bpy.ops.semantify.use_mesh() == {"FINISHED"}
    state = obj.semantify
    assert (state.model_name, state.model_source, state.component_count) == ("My Character", "shape keys", 3)
    exported = tmp_path / "my_character.npz"
    assert bpy.ops.semantify.export_model(filepath=str(exported)) == {"FINISHED"}
    model = load_model(exported)
    assert model.checksum() == state.model_checksum and model.component_names == ("lift", "twist", "bulge")
    c = np.array([0.7, 0.4, 0.9], dtype=np.float32)
    obj.data.shape_keys.key_blocks.foreach_set("value", np.concatenate([[1.0], c]).astype(np.float32))
    obj.data.shape_keys.update_tag()
    # Relative keys and vertex groups included, the model reproduces Blender's own shape-key evaluation.
    assert np.abs(evaluated_vertices(obj) - model.vertices(c)).max() < 1e-5
    mapper_path = tmp_path / "mine.npz"
    make_mapper(model, mapper_path, names=("tall", "wide"), count=3)
    assert bpy.ops.semantify.load_mapper(filepath=str(mapper_path)) == {"FINISHED"}
    assert len(state.sliders) == 2


def test_background_builds_name_the_model_by_bundled_name_or_an_exported_file(glue) -> None:
    obj = make_mesh_with_shape_keys()
    bpy.ops.semantify.use_mesh()
    options = glue.jobs.model_options(bpy.context, obj)
    path = options["model"]
    assert list(options) == ["model"] and Path(path).is_file()  # the worker process cannot see this mesh
    assert load_model(path).checksum() == obj.semantify.model_checksum
    assert bpy.ops.semantify.add_model(model="anny-body") == {"FINISHED"}
    assert glue.jobs.model_options(bpy.context, bpy.context.active_object) == {"model": "anny-body"}


def test_export_refuses_shape_keys_changed_since_use_my_mesh(glue, tmp_path: Path) -> None:
    obj = make_mesh_with_shape_keys()
    bpy.ops.semantify.use_mesh()
    obj.data.shape_keys.key_blocks["lift"].data[0].co.z += 0.5
    with pytest.raises(RuntimeError, match="changed since 'Use My Mesh'"):
        bpy.ops.semantify.export_model(filepath=str(tmp_path / "stale.npz"))
    assert not (tmp_path / "stale.npz").exists()


def test_jobs_and_fits_refuse_shape_keys_changed_since_use_my_mesh_alike(glue) -> None:
    obj = make_mesh_with_shape_keys()
    bpy.ops.semantify.use_mesh()
    assert glue.model_objects.model_of(obj) is not None
    obj.data.shape_keys.key_blocks["lift"].data[0].co.z += 0.5
    glue.model_objects.clear_models()
    with pytest.raises(
        glue.engine.import_engine("errors").ModelFileError, match="changed since 'Use My Mesh'"
    ):
        glue.jobs.model_options(bpy.context, obj)  # a build would train for another model
    assert glue.model_objects.model_of(obj) is None  # nothing to measure a fit with
