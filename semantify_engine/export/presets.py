"""Export presets: what a file for a given target must hold, and the exporter options that write it.

A shaped, posed, rigged character leaves Blender as the artist sees it only if the file is written the
way its reader understands it. Blender's exporters at their defaults lose things (measured with the
Khronos glTF validator, pygltflib, usd-core and Blender's own importers): glTF exports the rest position
and no pose, and keeps 4 of up to 9 skin influences (12.8 mm off on a posed arm); USD declares shape-key
weights without values and binds no animation, so UsdSkel shows the template; FBX adds ``*_end`` leaf
bones. Each preset here names its target and says, as data, what must be done in Blender before the
exporter runs and which options the exporter gets:

- ``max_influences``: limit the skin to that many bones per vertex and renormalise, in Blender, where
  the target reads no more (three.js and Unity read 4); None keeps every influence;
- ``pose``: how the current pose travels: ``"nodes"`` as the bones' own transforms (the file's default
  pose; glTF viewers show it), ``"animation"`` as a one-frame animation over the bind pose (game engines
  play it; the rig stays retargetable), ``"rest"`` baked into the rest pose (mesh and skeleton: for
  readers that show the bind pose), ``"mesh"`` baked into a static mesh (no skeleton);
- ``shape``: ``"morph"`` keeps the shape keys as morph targets / blend shapes with their weights and
  adds one per slider, named by its descriptor (at weight 1: the slider at its high end), so a game
  engine can drive "height" or "muscular"; ``"apply"`` makes the current shape the mesh (formats that
  cannot carry live shape keys correctly).

The Blender glue (``semantify_blender/export.py``) carries this out on copies of the character, so the
scene is never changed by an export. Nothing here imports bpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import ExportError

FORMATS = ("gltf", "fbx", "usd", "obj")
POSES = ("nodes", "animation", "rest", "mesh")
SHAPES = ("morph", "apply")


@dataclass(frozen=True)
class ExportPreset:
    """One target: its file format and suffix, what Blender must do first, the exporter's options."""

    name: str
    label: str
    description: str
    format: str
    suffix: str
    pose: str
    shape: str = "morph"
    max_influences: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format not in FORMATS or self.pose not in POSES or self.shape not in SHAPES:
            raise ValueError(
                f"preset {self.name}: format/pose/shape must be one of {FORMATS}/{POSES}/{SHAPES}"
            )
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    @property
    def skinned(self) -> bool:
        """Whether the file carries the skeleton and skin (every pose but a static mesh)."""
        return self.pose != "mesh"


_GLTF = {
    "export_format": "GLB",
    "export_skins": True,
    "export_morph": True,
    "export_morph_normal": False,  # positions only: normals are recomputed by every reader
    "export_apply": False,  # applying modifiers would drop the shape keys
    "export_def_bones": True,  # deforming bones only: the skeleton is the skin's
    "export_materials": "NONE",
    "export_yup": True,
}
PRESETS: tuple[ExportPreset, ...] = (
    ExportPreset(
        name="gltf-web",
        label="glTF (web, Godot, three.js)",
        description="Binary glTF: shape keys as morph targets with their weights, the pose as the bones' own "
        "transforms, at most 4 skin influences per vertex (three.js reads 4)",
        format="gltf",
        suffix=".glb",
        pose="nodes",
        max_influences=4,
        options={**_GLTF, "export_rest_position_armature": False, "export_animations": False},
    ),
    ExportPreset(
        name="gltf-engine",
        label="glTF for Unity / Unreal",
        description="Binary glTF for game engines: morph targets, the bind pose with the current pose as a "
        "one-frame animation, at most 4 skin influences per vertex",
        format="gltf",
        suffix=".glb",
        pose="animation",
        max_influences=4,
        options={
            **_GLTF,
            "export_rest_position_armature": True,
            "export_animations": True,
            "export_animation_mode": "ACTIONS",
            "export_force_sampling": True,
            "export_optimize_animation_size": False,
        },
    ),
    ExportPreset(
        name="fbx",
        label="FBX (Unity, Unreal)",
        description="FBX: blend shapes with their weights, no *_end leaf bones, the pose as the bones' own "
        "transforms, at most 4 skin influences per vertex (Unity's default)",
        format="fbx",
        suffix=".fbx",
        pose="nodes",
        max_influences=4,
        options={
            "object_types": {"ARMATURE", "MESH"},
            "add_leaf_bones": False,
            "use_mesh_modifiers": False,  # applying modifiers would drop the shape keys
            "use_armature_deform_only": True,
            "bake_anim": False,  # the current pose is in the bones' transforms; no take
        },
    ),
    ExportPreset(
        name="usd",
        label="USD",
        description="USD: the current shape and pose applied (USD readers show neither Blender's shape-key "
        "weights nor an unbound pose), skeleton and every skin influence kept; bone names become USD "
        "identifiers (pelvis.L: pelvis_L)",
        format="usd",
        suffix=".usdc",
        pose="rest",
        shape="apply",
        options={
            "export_armatures": True,
            "export_shapekeys": False,
            "export_materials": False,
            "export_animation": False,
            "only_deform_bones": True,
        },
    ),
    ExportPreset(
        name="obj",
        label="OBJ (static)",
        description="Wavefront OBJ: the mesh as it is shown (shape and pose), no skeleton",
        format="obj",
        suffix=".obj",
        pose="mesh",
        shape="apply",
        options={"apply_modifiers": True, "export_materials": False, "export_uv": False},
    ),
)


def preset(name: str) -> ExportPreset:
    """The preset called ``name``; a one-line error listing the presets otherwise."""
    for candidate in PRESETS:
        if candidate.name == name:
            return candidate
    names = ", ".join(candidate.name for candidate in PRESETS)
    raise ExportError(f"There is no export preset '{name}'; the presets are {names}.")
