"""The only layer that reads the Blender scene (imports bpy). It gathers; core computes."""
