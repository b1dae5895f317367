"""LTX-2 neural rendering for Blender.

bpy is imported only inside register()/unregister() so that `blender_addon.core` stays
importable (and testable) without Blender.
"""

_MODULES = ("ui.properties", "ui.preferences", "operators", "ui.panel")


def _modules():
    import importlib

    return [importlib.import_module(f".{name}", __package__) for name in _MODULES]


def register():
    import bpy

    from .ui import handlers

    for module in _modules():
        module.register()
    if handlers.reattach_after_load not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(handlers.reattach_after_load)
    handlers.subscribe_frame_range()
    scenes = getattr(bpy.data, "scenes", None)  # absent while Blender starts up (restricted data)
    for scene in scenes if scenes is not None else ():
        handlers.refresh_notes(scene)


def unregister():
    import bpy

    from .ui import handlers

    if handlers.reattach_after_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(handlers.reattach_after_load)
    handlers.unsubscribe_frame_range()
    for module in reversed(_modules()):
        module.unregister()
