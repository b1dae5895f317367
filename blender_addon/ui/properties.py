"""Scene settings (`scene.ltx_render`) and the job records kept in the .blend.

Only what belongs to the shot lives here. Server addresses and tokens live in the add-on
preferences (ui/preferences.py), never in the .blend.
"""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ..client.limits import frames_problem, reference_canvases, snap_size_for
from ..core import jobs
from ..core.planning import snap_frames
from ..core.preview import RenderSettings, estimate_line, render_settings
from .preferences import profile_limits

CAMERA_MODES = [
    ("auto", "Auto preset", "Classify the camera move and apply the matching camera LoRA"),
    ("preset", "Named preset", "Apply the camera LoRA named below"),
    ("trajectory", "Trajectory", "Send the exact camera track (K + pose per frame) to a trajectory LoRA"),
    ("off", "Off", "No camera conditioning"),
]
JOB_STATES = [(s, s.capitalize(), "") for s in jobs.STATES]
# Blender 5.0 warns when a "//" path is set on a path property without this option (4.x lacks it).
BLEND_RELATIVE = {"PATH_SUPPORTS_BLEND_RELATIVE"} if bpy.app.version >= (5, 0, 0) else set()


class LTX_PG_target(bpy.types.PropertyGroup):
    """A collection or an object the model must follow (or an armature drawn as pose)."""

    collection: PointerProperty(name="Collection", type=bpy.types.Collection)
    object: PointerProperty(name="Object", type=bpy.types.Object)

    @property
    def target_name(self) -> str:
        item = self.collection or self.object
        return item.name if item else ""


class LTX_PG_job(bpy.types.PropertyGroup):
    """core.jobs.JobRecord as Blender properties (saved with the .blend)."""

    request_id: StringProperty()
    shot: StringProperty()
    take_dir: StringProperty(description="Take folder, relative to the .blend (//renders/...)")
    profile: StringProperty()
    job_id: StringProperty()
    state: EnumProperty(items=JOB_STATES, default=jobs.EXPORTING)
    message: StringProperty()
    frame_start: IntProperty()
    frame_end: IntProperty()
    created_s: FloatProperty()
    trim_start: IntProperty(min=0)
    trim_end: IntProperty(min=0)
    progress: FloatProperty(min=0.0, max=1.0, subtype="FACTOR")
    progress_text: StringProperty()
    settings_json: StringProperty(description="The settings this take was made with (for take.json)")

    def to_record(self) -> jobs.JobRecord:
        return jobs.JobRecord(request_id=self.request_id, shot=self.shot, take_dir=self.take_dir,
                              profile=self.profile, job_id=self.job_id, state=self.state, message=self.message,
                              frame_start=self.frame_start, frame_end=self.frame_end, created_s=self.created_s,
                              trim_start=self.trim_start, trim_end=self.trim_end)

    def from_record(self, record: jobs.JobRecord) -> None:
        for key, value in record.to_dict().items():
            setattr(self, key, value)


def frame_note(scene: bpy.types.Scene, limits: dict) -> str:
    """What a Render Preview of the scene's range will render, or why it cannot."""
    start, end = shot_range(scene)
    try:
        n, message = snap_frames(end - start + 1)
    except ValueError as exc:  # shown in the panel instead
        return str(exc)
    return message or frames_problem(n, limits) or f"{n} frames ({start}..{start + n - 1})"


def size_note(width: int, height: int, limits: dict, control_lora: str = "", camera_mode: str = "",
              trajectory_lora: str = "") -> str:
    """The size a render will use (snapped to the server's and the LoRAs' rules), or why it cannot."""
    try:
        w, h, message = snap_size_for(width, height, limits, control_lora, camera_mode, trajectory_lora)
    except ValueError as exc:
        return str(exc)
    return message or f"{w} x {h}"


def refresh_notes(scene: bpy.types.Scene) -> None:
    """Recompute the panel's frame and size notes into stored strings, so draw() only reads them.
    Called when the size, profile, control LoRA, camera mode or trajectory LoRA change, when the
    frame range changes (msgbus, see handlers.py), after a .blend loads and when a Test
    connection brings new server limits."""
    settings = getattr(scene, "ltx_render", None)
    if settings is None:
        return
    limits = profile_limits(settings.profile)
    notes = (frame_note(scene, limits), size_note(settings.width, settings.height, limits,
                                                  settings.control_lora.strip(), settings.camera_mode,
                                                  settings.camera_trajectory.strip()),
             *quality_notes(scene, limits))
    if (settings.frame_note, settings.size_note, settings.render_note, settings.estimate_note) != notes:
        # write only on change: no needless redraws
        settings.frame_note, settings.size_note, settings.render_note, settings.estimate_note = notes


def quality_notes(scene: bpy.types.Scene, limits: dict) -> tuple[str, str]:
    """(what the render at the panel's Quality will use, its estimate) for the panel: "Preview: 384 x 256,
    121 frames, 1 stage, 8 steps" and "≈ 14 s, 9.2 GiB on gpu-box (measured)" from the cost model the
    profile's server reported at the last Test connection ("" before one, or from a 2.0 server). Never
    touches the network."""
    settings = scene.ltx_render
    start, end = shot_range(scene)
    try:
        effective = render_settings_for(scene, snap_frames(end - start + 1)[0], limits=limits)
    except ValueError:
        return "", ""  # the frame and size notes say why
    control_lora = settings.control_lora.strip()
    factors, scales = reference_canvases(limits, control_lora, bool(control_lora or settings.targets),
                                         settings.camera_mode, settings.camera_trajectory.strip(),
                                         settings.reference_downscale_factor)
    return effective.summary(), estimate_line(effective, limits, settings.profile, factors, scales)


def render_settings_for(scene: bpy.types.Scene, num_frames: int, quality: str = "",
                        limits: dict | None = None) -> RenderSettings:
    """What a render of num_frames frames uses at `quality` ("" = the panel's Quality; core/preview.py):
    size snapped to the server's (limits; None = the profile's) and the shot's LoRAs' rules, steps and
    stages; ValueError saying what to change."""
    s = scene.ltx_render
    control_lora, trajectory = s.control_lora.strip(), s.camera_trajectory.strip()

    def snap(width: int, height: int, lim: dict) -> tuple[int, int, str]:
        return snap_size_for(width, height, lim, control_lora, s.camera_mode, trajectory)

    limits = profile_limits(s.profile) if limits is None else limits
    return render_settings(quality or s.quality, s.width, s.height, num_frames, limits, snap)


def _refresh_notes(self, _context) -> None:
    refresh_notes(self.id_data)


def shot_range(scene: bpy.types.Scene) -> tuple[int, int]:
    """The range a Render Preview covers: the preview range when on, else the scene range."""
    if scene.use_preview_range:
        return scene.frame_preview_start, scene.frame_preview_end
    return scene.frame_start, scene.frame_end


CANVAS_KINDS_UI = (
    ("auto", "Auto", "The canvas the control LoRA was trained on (as the server reports it), else Depth + pose"),
    ("depth+pose", "Depth + pose", "Masked inverse depth of the targets with the OpenPose skeleton on top (AVControl)"),
    ("depth", "Depth", "Relative inverse depth, normalised over the shot, near = white (depth LoRAs)"),
    ("pose", "Pose", "DWPose drawing on black: body, hands, face (pose LoRAs)"),
    ("edges", "Edges", "White silhouettes and creases on black, exact from the scene (canny LoRAs)"),
    ("playblast", "Playblast", "Grey solid shading of the blockout (layout-to-render LoRAs)"),
)
DEPTH_SCOPES_UI = (
    ("everything", "Everything", "Depth of all the camera sees: a dolly zoom's perspective lands in the depth"),
    ("targets", "Targets only", "Depth of the chosen targets; the rest is black (the model's to invent)"),
)
QUALITIES_UI = (
    ("preview", "Preview", "Fast: half the size, one stage, fewer steps where the model allows; every frame, "
     "with sound, at the shot's frames"),
    ("final", "Final", "The panel's size and the server's default steps and stages"),
)
PLAYBLAST_COLOURS_UI = (("grey", "Grey", "Solid grey, like the viewport's Solid mode"),
                        ("object", "Object colour", "Each object in its viewport display colour"))


class LTX_PG_settings(bpy.types.PropertyGroup):
    prompt: StringProperty(name="Prompt", description="What the video shows")
    negative_prompt: StringProperty(name="Negative prompt")
    targets: CollectionProperty(type=LTX_PG_target)
    armatures: CollectionProperty(type=LTX_PG_target)
    control_strength: FloatProperty(
        name="Control strength", default=1.0, min=0.0, max=1.0, subtype="FACTOR",
        description="How closely the video follows the control canvas (keyframe it for a per-frame curve)")
    use_background_strength: BoolProperty(name="Background strength", default=False,
                                           description="Use a separate strength outside the targets' mask")
    background_strength: FloatProperty(name="Background", default=0.2, min=0.0, max=1.0, subtype="FACTOR")
    camera_mode: EnumProperty(name="Camera", items=CAMERA_MODES, default="auto", update=_refresh_notes)
    camera_preset: StringProperty(name="Camera LoRA",
                                  description="Camera preset LoRA name on the server (Named preset mode)")
    camera_trajectory: StringProperty(
        name="Trajectory LoRA",
        description="Trajectory LoRA name on the server ('' = the server's only one) (Trajectory mode)",
        update=_refresh_notes)
    control_lora: StringProperty(name="Control LoRA", description="Control LoRA name on the server ('' = none)",
                                 update=_refresh_notes)
    seed: IntProperty(name="Seed", default=0, min=0)
    quality: EnumProperty(name="Quality", items=QUALITIES_UI, default="final", update=_refresh_notes,
                          description="Preview: fast (half size, one stage, fewer steps where the model allows), "
                          "for Render Preview and Render Animation; Final: the full settings")
    width: IntProperty(name="Width", default=768, min=32, soft_max=1920, description="Video width in pixels",
                       update=_refresh_notes)
    height: IntProperty(name="Height", default=512, min=32, soft_max=1088, description="Video height in pixels",
                        update=_refresh_notes)
    reference_downscale_factor: IntProperty(
        name="Reference downscale", default=1, min=1, max=8,
        description="Render the control canvas at 1/factor of the video size (used until Test connection "
        "reports the control LoRA's own reference_downscale_factor)")
    canvas_kind: EnumProperty(name="Canvas", items=CANVAS_KINDS_UI, default="auto",
                              description="What the control canvas shows; a control LoRA reads the kind it was "
                              "trained on")
    depth_scope: EnumProperty(name="Depth of", items=DEPTH_SCOPES_UI, default="everything")
    pose_hands: BoolProperty(name="Hands", default=True, description="Draw finger joints (rigs with finger bones)")
    pose_face: BoolProperty(name="Face", default=True, description="Draw the 68 face points (rigs with face "
                            "landmark bones)")
    playblast_colour: EnumProperty(name="Shading", items=PLAYBLAST_COLOURS_UI, default="grey")
    audio: BoolProperty(name="Audio", default=True, description="Add the generated sound to the sequencer")
    profile: StringProperty(name="Server", description="Connection profile name (add-on preferences)",
                            update=_refresh_notes)
    # Computed by refresh_notes() (never in draw()): what a render of the range / size will use.
    frame_note: StringProperty(name="Frames")
    size_note: StringProperty(name="Size")
    render_note: StringProperty(name="Render")  # what the render at this Quality uses (core/preview.py)
    estimate_note: StringProperty(name="Estimate")  # seconds and memory on the server ("" = unknown)
    canvas_image: PointerProperty(type=bpy.types.Image, name="Canvas preview")
    # Live state, written by the operators only (draw() reads them).
    status_text: StringProperty(name="Status")
    progress: FloatProperty(min=0.0, max=1.0, subtype="FACTOR")
    busy: BoolProperty()
    jobs: CollectionProperty(type=LTX_PG_job)
    take_dir: StringProperty(name="Take", subtype="DIR_PATH", description="Take folder for Redo take",
                             options=BLEND_RELATIVE)


CLASSES = (LTX_PG_target, LTX_PG_job, LTX_PG_settings)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.ltx_render = PointerProperty(type=LTX_PG_settings)


def unregister() -> None:
    del bpy.types.Scene.ltx_render
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
