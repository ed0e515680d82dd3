"""Rigging: posing a model's skeleton and skinning its mesh (the reference the Blender rig follows)."""
