"""Rigging without Blender: skinning (the Blender rig's reference), bone layouts, vertex regressors."""
