"""Add-on preferences: connection profiles. Saved in Blender's user preferences, so tokens
never travel inside a .blend that gets shared."""

from __future__ import annotations

import json

import bpy
from bpy.props import BoolProperty, CollectionProperty, IntProperty, StringProperty

from ..client.profiles import TOKEN_ENV, ServerProfile

# The add-on's root package: "blender_addon" in tests, "bl_ext.<repo>.ltx_neural_render" installed.
ADDON_ID = __package__.rpartition(".")[0]


class LTX_PG_profile(bpy.types.PropertyGroup):
    name: StringProperty(name="Name", default="Local")
    address: StringProperty(name="Address", default="localhost:50051", description="host:port of the server")
    use_tls: BoolProperty(name="TLS", default=False, description="Encrypt the connection (cloud servers)")
    ca_cert_path: StringProperty(name="CA certificate", subtype="FILE_PATH",
                                 description="PEM file for a self-signed server (empty = system roots)")
    token: StringProperty(name="Token", subtype="PASSWORD", description="Bearer token (kept in preferences)")
    token_file: StringProperty(name="Token file", subtype="FILE_PATH",
                               description=f"File holding the token (else ${TOKEN_ENV})")
    limits_json: StringProperty(options={"HIDDEN"}, description="Server limits from the last Test connection")

    def to_profile(self) -> ServerProfile:
        return ServerProfile(name=self.name, address=self.address, use_tls=self.use_tls,
                             ca_cert_path=bpy.path.abspath(self.ca_cert_path) if self.ca_cert_path else "",
                             token=self.token,
                             token_file=bpy.path.abspath(self.token_file) if self.token_file else "")


class LTX_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    profiles: CollectionProperty(type=LTX_PG_profile)
    active_profile: IntProperty(default=0, min=0)
    connection_text: StringProperty(name="Last test")
    connection_ok: BoolProperty()
    # "Start local server" (operators/setup.py): a render server on this machine for a localhost profile.
    local_model: StringProperty(name="Model folder", subtype="DIR_PATH",
                                description="diffusers LTX-2 folder the local server loads")
    local_command: StringProperty(name="Server command", default="render-backend",
                                  description="render-backend, or its full path in the backend's virtual environment")
    local_idle_minutes: IntProperty(name="Stop when idle (min)", default=0, min=0,
                                    description="the local server stops after this long without work; 0 = never")

    def draw(self, context):
        layout = self.layout
        row = layout.row()
        row.label(text="Render servers")
        row.operator("ltx_render.profile_add", text="", icon="ADD")
        for index, item in enumerate(self.profiles):
            box = layout.box()
            head = box.row()
            head.prop(item, "name", text="")
            head.operator("ltx_render.start_local_server", text="Start", icon="PLAY").profile = item.name
            head.operator("ltx_render.test_connection", text="Test connection").profile = item.name
            head.operator("ltx_render.profile_remove", text="", icon="X").index = index
            box.prop(item, "address")
            row = box.row()
            row.prop(item, "use_tls")
            sub = row.row()
            sub.active = item.use_tls
            sub.prop(item, "ca_cert_path", text="CA")
            box.prop(item, "token")
            box.prop(item, "token_file")
        local = layout.box()
        local.label(text="Local server (Start on a localhost profile)")
        local.prop(self, "local_model")
        row = local.row()
        row.prop(self, "local_command")
        row.prop(self, "local_idle_minutes")
        if self.connection_text:
            layout.label(text=self.connection_text, icon="CHECKMARK" if self.connection_ok else "ERROR")


def addon_preferences(context=None) -> LTX_AP_preferences | None:
    """The preferences, or None when the add-on runs unregistered (tests importing it directly)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon else None


def find_profile(name: str, context=None) -> ServerProfile:
    """The profile called `name` ("" = the first one); a clear error when there is none."""
    prefs = addon_preferences(context)
    items = list(prefs.profiles) if prefs else []
    if not items:
        raise LookupError("no render server configured: add one in Preferences > Add-ons > LTX Render")
    if not name:
        return items[0].to_profile()
    for item in items:
        if item.name == name:
            return item.to_profile()
    raise LookupError(f"no server profile named {name!r}; pick one of {', '.join(i.name for i in items)}")


def profile_limits(name: str, context=None) -> dict:
    """Limits the named profile's server reported at its last Test connection ({} if never)."""
    prefs = addon_preferences(context)
    items = list(prefs.profiles) if prefs else []
    item = next((i for i in items if i.name == name), items[0] if items and not name else None)
    if item is None or not item.limits_json:
        return {}
    try:
        return json.loads(item.limits_json)
    except ValueError:
        return {}


def store_limits(name: str, limits: dict, context=None) -> None:
    """Remember what the profile's server accepts (the caller refreshes the panels' notes)."""
    prefs = addon_preferences(context)
    for item in prefs.profiles if prefs else ():
        if item.name == name:
            item.limits_json = json.dumps(limits)


CLASSES = (LTX_PG_profile, LTX_AP_preferences)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
