"""What other tools see in an exported file: glTF read by pygltflib, USD by usd-core's UsdSkel.

Each reader computes the shown vertices from the file alone, the way the format defines them (glTF 2.0
§3.7: morph targets, then skinning with the joints' world matrices times their inverse bind matrices;
UsdSkel: ``ComputeSkinnedPoints`` with the skeleton's skinning transforms), and returns them in
Blender's world axes (Z up) so a test can compare them with Blender's evaluated mesh. Nothing here
knows how Semantify wrote the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

COMPONENTS = {
    5120: np.int8,
    5121: np.uint8,
    5122: np.int16,
    5123: np.uint16,
    5125: np.uint32,
    5126: np.float32,
}
WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
GLTF_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # glTF is Y up


@dataclass
class GltfCharacter:
    vertices: np.ndarray  # (V, 3) shown vertices, Blender axes
    morph_names: list[str]
    joint_names: list[str]
    max_influences: int


def _accessor(gltf, blob: bytes, index: int) -> np.ndarray:
    accessor = gltf.accessors[index]
    view = gltf.bufferViews[accessor.bufferView]
    dtype = np.dtype(COMPONENTS[accessor.componentType])
    width = WIDTH[accessor.type]
    start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
    stride = view.byteStride or dtype.itemsize * width
    rows = np.lib.stride_tricks.as_strided(
        np.frombuffer(blob, dtype=np.uint8, offset=start),
        shape=(accessor.count, dtype.itemsize * width),
        strides=(stride, 1),
    )
    values = np.ascontiguousarray(rows).view(dtype).reshape(accessor.count, width).astype(np.float64)
    if accessor.normalized and dtype.kind in "iu":
        values /= np.iinfo(dtype).max
    return values


def _quaternion_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def read_gltf(
    path: str | Path, animation: int | None = None, morph_weights: dict[str, float] | None = None
) -> GltfCharacter:
    """The skinned, morphed mesh of a .glb as glTF defines it.

    ``animation``: sample that animation's first keyframe; ``morph_weights``: set these targets' weights
    (by name) instead of the file's, as an engine driving them would.
    """
    from pygltflib import GLTF2

    gltf = GLTF2().load(str(path))
    blob = gltf.binary_blob()
    translation = {i: np.array(n.translation or [0, 0, 0], float) for i, n in enumerate(gltf.nodes)}
    rotation = {i: np.array(n.rotation or [0, 0, 0, 1], float) for i, n in enumerate(gltf.nodes)}
    scale = {i: np.array(n.scale or [1, 1, 1], float) for i, n in enumerate(gltf.nodes)}
    if animation is not None:
        for channel in gltf.animations[animation].channels:
            sampler = gltf.animations[animation].samplers[channel.sampler]
            first = _accessor(gltf, blob, sampler.output)[0]
            {"translation": translation, "rotation": rotation, "scale": scale}[channel.target.path][
                channel.target.node
            ] = first
    parent = {child: i for i, node in enumerate(gltf.nodes) for child in (node.children or [])}

    def local(i: int) -> np.ndarray:
        node = gltf.nodes[i]
        if node.matrix:
            return np.array(node.matrix, float).reshape(4, 4).T
        matrix = np.eye(4)
        matrix[:3, :3] = _quaternion_matrix(rotation[i]) * scale[i]
        matrix[:3, 3] = translation[i]
        return matrix

    def world(i: int) -> np.ndarray:
        return world(parent[i]) @ local(i) if i in parent else local(i)

    (mesh_node,) = [i for i, node in enumerate(gltf.nodes) if node.mesh is not None]
    node = gltf.nodes[mesh_node]
    (primitive,) = gltf.meshes[node.mesh].primitives
    attributes = primitive.attributes
    positions = _accessor(gltf, blob, attributes.POSITION)
    weights = list(getattr(node, "weights", None) or gltf.meshes[node.mesh].weights or [])
    names = list((gltf.meshes[node.mesh].extras or {}).get("targetNames", []))
    for name, weight in (morph_weights or {}).items():
        weights[names.index(name)] = weight
    for target, weight in zip(primitive.targets or [], weights, strict=False):
        positions = positions + weight * _accessor(gltf, blob, target["POSITION"])
    joint_names, influences = [], 0
    if node.skin is None:
        shown = (positions @ world(mesh_node)[:3, :3].T) + world(mesh_node)[:3, 3]
    else:
        skin = gltf.skins[node.skin]
        inverse_bind = _accessor(gltf, blob, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
        joints = np.stack([world(j) @ inverse_bind[k] for k, j in enumerate(skin.joints)])
        joint_names = [gltf.nodes[j].name for j in skin.joints]
        sets = [index for index in range(4) if getattr(attributes, f"JOINTS_{index}", None) is not None]
        indices = np.concatenate(
            [_accessor(gltf, blob, getattr(attributes, f"JOINTS_{i}")) for i in sets], axis=1
        )
        values = np.concatenate(
            [_accessor(gltf, blob, getattr(attributes, f"WEIGHTS_{i}")) for i in sets], axis=1
        )
        blended = np.einsum("vk,vkab->vab", values, joints[indices.astype(int)])
        shown = np.einsum("vab,vb->va", blended[:, :3, :3], positions) + blended[:, :3, 3]
        influences = int(np.count_nonzero(values, axis=1).max())
    return GltfCharacter(shown @ GLTF_TO_BLENDER.T, names, joint_names, influences)


@dataclass
class UsdCharacter:
    vertices: np.ndarray  # (V, 3) shown vertices in the stage's world (Blender writes Z up, metres)
    joint_names: list[str]
    up_axis: str


def read_usd(path: str | Path) -> UsdCharacter:
    """The mesh of a USD file as UsdSkel shows it: skinned by its bound skeleton at the default time."""
    from pxr import Usd, UsdGeom, UsdSkel

    stage = Usd.Stage.Open(str(path))
    time = Usd.TimeCode.Default()
    cache = UsdSkel.Cache()
    (mesh_prim,) = [prim for prim in stage.Traverse() if prim.IsA(UsdGeom.Mesh)]
    points = np.array(UsdGeom.Mesh(mesh_prim).GetPointsAttr().Get(time), dtype=np.float64)
    joint_names: list[str] = []
    root = UsdSkel.Root.Find(mesh_prim)
    skinned = None
    if root:
        cache.Populate(root, Usd.PrimDefaultPredicate)
        for binding in cache.ComputeSkelBindings(root, Usd.PrimDefaultPredicate):
            skeleton_query = cache.GetSkelQuery(binding.GetSkeleton())
            joint_names = [str(token).split("/")[-1] for token in skeleton_query.GetJointOrder()]
            transforms = skeleton_query.ComputeSkinningTransforms(time)
            for target in binding.GetSkinningTargets():
                if target.GetPrim() == mesh_prim:
                    from pxr import Vt

                    moved = Vt.Vec3fArray([tuple(point) for point in points])
                    target.ComputeSkinnedPoints(transforms, moved, time)
                    to_world = np.array(
                        UsdGeom.Xformable(binding.GetSkeleton().GetPrim()).ComputeLocalToWorldTransform(time)
                    )
                    skinned = np.array(moved, dtype=np.float64) @ to_world[:3, :3] + to_world[3, :3]
    if skinned is None:
        to_world = np.array(UsdGeom.Xformable(mesh_prim).ComputeLocalToWorldTransform(time))
        skinned = points @ to_world[:3, :3] + to_world[3, :3]
    return UsdCharacter(skinned, joint_names, str(UsdGeom.GetStageUpAxis(stage)))


def nearest_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The largest distance from a point of either set to the other set (exact when the order agrees)."""
    if a.shape == b.shape:
        return float(np.linalg.norm(a - b, axis=1).max())
    from scipy.spatial import cKDTree

    return float(max(cKDTree(b).query(a)[0].max(), cKDTree(a).query(b)[0].max()))
