"""Pure Python + numpy: everything computable from numbers. Never imports bpy."""
