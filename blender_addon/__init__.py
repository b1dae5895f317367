"""LTX-2 neural rendering for Blender.

bpy is imported only inside register()/unregister() so that `blender_addon.core` stays
importable (and testable) without Blender.
"""


def register():
    pass


def unregister():
    pass
