"""The sidebar panels and preferences draw only real properties and operators (checked with a
recording layout: headless Blender cannot draw), the notes they show are stored strings kept
current by property updates, tokens never end up in the .blend, and Cancel stops a job on the
REAL server (conftest.live_server)."""

from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy", reason="needs bpy (pip install bpy==5.0.1)")

from blender_addon.operators.shot import ShotRender  # noqa: E402
from blender_addon.ui import panel  # noqa: E402
from blender_addon.ui.preferences import LTX_AP_preferences, find_profile  # noqa: E402

from .blender_helpers import fresh_shot, tick_until  # noqa: E402

pytestmark = pytest.mark.blender


class RecordingLayout:
    """Stands in for UILayout: checks every property / operator it is asked to draw exists."""

    def __init__(self, log):
        self.log = log

    def __getattr__(self, name):  # row(), column(), box(), split()... -> a nested layout
        if name in ("row", "column", "box", "split", "grid_flow", "column_flow"):
            return lambda *a, **k: RecordingLayout(self.log)
        raise AttributeError(name)

    def prop(self, data, name, **kw):
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.log.append(("prop", name))

    def prop_search(self, data, name, search_data, search_name, **kw):
        assert name in data.bl_rna.properties and search_name in search_data.bl_rna.properties
        self.log.append(("prop_search", name))

    def operator(self, idname, **kw):
        module, op = idname.split(".")
        rna = getattr(getattr(bpy.ops, module), op).get_rna_type()
        self.log.append(("operator", idname))
        return _OpProps(rna)

    def label(self, text="", **kw):
        self.log.append(("label", text))

    def template_icon(self, **kw):
        self.log.append(("icon", kw["icon_value"]))

    def progress(self, **kw):
        self.log.append(("progress", kw["text"]))


class _OpProps:
    def __init__(self, rna):
        object.__setattr__(self, "rna", rna)

    def __setattr__(self, name, value):
        assert name in self.rna.properties, f"operator {self.rna.identifier} has no property {name!r}"


def _draw(cls, context, owner=None):
    log = []
    fake = type("FakePanel", (), {"layout": RecordingLayout(log)})()
    cls.draw(fake if owner is None else _with_layout(owner, fake.layout), context)
    return log


def _with_layout(owner, layout):
    class Proxy:
        def __getattr__(self, name):
            return layout if name == "layout" else getattr(owner, name)
    return Proxy()


def test_panels_draw_existing_properties_and_operators(tmp_path):
    scene = fresh_shot(tmp_path, server_address="localhost:1")
    scene.ltx_render.status_text, scene.ltx_render.busy = "shot: Denoising 3/8", True
    context = bpy.context
    drawn = []
    for cls in panel.CLASSES:
        drawn += _draw(cls, context)
    props = {name for kind, name in drawn if kind in ("prop", "prop_search")}
    ops = {name for kind, name in drawn if kind == "operator"}
    assert {"prompt", "control_strength", "camera_mode", "camera_preset", "camera_trajectory", "seed", "audio",
            "width", "height", "profile"} <= props
    assert {"ltx_render.render_preview", "ltx_render.render_animation", "ltx_render.cancel",
            "ltx_render.preview_canvas", "ltx_render.redo_take", "ltx_render.resume_jobs"} <= ops
    labels = [text for kind, text in drawn if kind == "label"]
    assert "shot: Denoising 3/8" in labels
    assert "256 x 160" in labels and "9 frames (1..9)" in labels  # snapped size/frames shown
    scene.ltx_render.width = 250  # the update callback stores the new note; draw() only reads it
    assert scene.ltx_render.size_note == "width 250 -> 256: sizes must be multiples of 32"
    assert scene.ltx_render.size_note in [t for k, t in _draw(panel.LTX_PT_shot, context) if k == "label"]
    for name in ("frame_note", "size_note"):  # stored, not computed on every redraw
        assert not scene.ltx_render.bl_rna.properties[name].is_readonly
    status = []
    panel.draw_status(type("Bar", (), {"layout": RecordingLayout(status)})(), context)
    assert status == [("progress", "shot: Denoising 3/8")]
    prefs = context.preferences.addons["blender_addon"].preferences
    pref_log = _draw(LTX_AP_preferences, context, owner=prefs)
    assert ("operator", "ltx_render.test_connection") in pref_log and ("prop", "token") in pref_log


def test_tokens_stay_in_preferences_not_in_the_blend(tmp_path):
    fresh_shot(tmp_path, server_address="localhost:1", profile_kw={"token": "sup3r-s3cret-t0ken"})
    assert find_profile("test").token == "sup3r-s3cret-t0ken"
    bpy.ops.wm.save_mainfile(compress=False)
    assert b"sup3r-s3cret-t0ken" not in (tmp_path / "shot.blend").read_bytes()
    assert b"localhost:1" not in (tmp_path / "shot.blend").read_bytes()  # the whole profile lives in prefs


def test_cancel_button_cancels_the_live_job(tmp_path, live_server, slow_engine):
    from blender_addon.proto import render_pb2 as pb

    slow_engine(400)
    scene = fresh_shot(tmp_path, server=live_server)
    runner = ShotRender(scene, find_profile("test"), 1, 9)
    tick_until(runner, lambda r: scene.ltx_render.jobs[-1].progress_text.startswith("Denoising"))
    assert bpy.ops.ltx_render.cancel() == {"FINISHED"}
    assert tick_until(runner, lambda r: r != {"RUNNING_MODAL"}) == {"CANCELLED"}
    assert scene.ltx_render.jobs[-1].state == "cancelled"
    assert live_server.job(scene.ltx_render.jobs[-1].job_id).state == pb.JOB_STATE_CANCELLED
    assert bpy.ops.ltx_render.cancel() == {"FINISHED"}  # nothing left: reports "nothing to cancel"
