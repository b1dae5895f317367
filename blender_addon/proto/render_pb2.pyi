from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoraKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LORA_KIND_UNSPECIFIED: _ClassVar[LoraKind]
    LORA_KIND_CONTROL: _ClassVar[LoraKind]
    LORA_KIND_CAMERA_PRESET: _ClassVar[LoraKind]
    LORA_KIND_CAMERA_TRAJECTORY: _ClassVar[LoraKind]
    LORA_KIND_STYLE: _ClassVar[LoraKind]

class CameraMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMERA_MODE_UNSPECIFIED: _ClassVar[CameraMode]
    CAMERA_MODE_AUTO: _ClassVar[CameraMode]
    CAMERA_MODE_PRESET: _ClassVar[CameraMode]
    CAMERA_MODE_TRAJECTORY: _ClassVar[CameraMode]
    CAMERA_MODE_OFF: _ClassVar[CameraMode]

class FrameKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_KIND_UNSPECIFIED: _ClassVar[FrameKind]
    FRAME_KIND_CONTROL: _ClassVar[FrameKind]
    FRAME_KIND_MASK: _ClassVar[FrameKind]
    FRAME_KIND_CONDITION: _ClassVar[FrameKind]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_ENCODING: _ClassVar[JobState]
    JOB_STATE_DONE: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class ArtifactKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ARTIFACT_KIND_UNSPECIFIED: _ClassVar[ArtifactKind]
    ARTIFACT_KIND_VIDEO_MP4: _ClassVar[ArtifactKind]
    ARTIFACT_KIND_AUDIO_WAV: _ClassVar[ArtifactKind]
    ARTIFACT_KIND_SIDECAR_JSON: _ClassVar[ArtifactKind]
    ARTIFACT_KIND_TAIL_ZIP: _ClassVar[ArtifactKind]
    ARTIFACT_KIND_FRAMES_ZIP: _ClassVar[ArtifactKind]
LORA_KIND_UNSPECIFIED: LoraKind
LORA_KIND_CONTROL: LoraKind
LORA_KIND_CAMERA_PRESET: LoraKind
LORA_KIND_CAMERA_TRAJECTORY: LoraKind
LORA_KIND_STYLE: LoraKind
CAMERA_MODE_UNSPECIFIED: CameraMode
CAMERA_MODE_AUTO: CameraMode
CAMERA_MODE_PRESET: CameraMode
CAMERA_MODE_TRAJECTORY: CameraMode
CAMERA_MODE_OFF: CameraMode
FRAME_KIND_UNSPECIFIED: FrameKind
FRAME_KIND_CONTROL: FrameKind
FRAME_KIND_MASK: FrameKind
FRAME_KIND_CONDITION: FrameKind
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_ENCODING: JobState
JOB_STATE_DONE: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
ARTIFACT_KIND_UNSPECIFIED: ArtifactKind
ARTIFACT_KIND_VIDEO_MP4: ArtifactKind
ARTIFACT_KIND_AUDIO_WAV: ArtifactKind
ARTIFACT_KIND_SIDECAR_JSON: ArtifactKind
ARTIFACT_KIND_TAIL_ZIP: ArtifactKind
ARTIFACT_KIND_FRAMES_ZIP: ArtifactKind

class GetCapabilitiesRequest(_message.Message):
    __slots__ = ("client_protocol_version",)
    CLIENT_PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    client_protocol_version: str
    def __init__(self, client_protocol_version: _Optional[str] = ...) -> None: ...

class LoraInfo(_message.Message):
    __slots__ = ("name", "kind", "reference_downscale_factor", "camera_move", "sha256", "rank", "canvas", "base_model", "reference_temporal_scale_factor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_DOWNSCALE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    CAMERA_MOVE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    CANVAS_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_TEMPORAL_SCALE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: LoraKind
    reference_downscale_factor: int
    camera_move: str
    sha256: str
    rank: int
    canvas: str
    base_model: str
    reference_temporal_scale_factor: int
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[LoraKind, str]] = ..., reference_downscale_factor: _Optional[int] = ..., camera_move: _Optional[str] = ..., sha256: _Optional[str] = ..., rank: _Optional[int] = ..., canvas: _Optional[str] = ..., base_model: _Optional[str] = ..., reference_temporal_scale_factor: _Optional[int] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("protocol_version", "server_version", "model_id", "model_variant", "loras", "frame_step", "max_frames", "size_multiple", "max_width", "max_height", "gpu_memory_free_bytes", "device", "default_steps", "default_guidance_scale", "default_fps", "audio_sample_rate", "two_stage", "auth_required", "engine", "min_frames", "latent_cell", "min_fps", "max_fps", "max_steps", "max_guidance_scale", "max_prompt_chars", "max_lora_weight", "variant_source", "default_stages", "guidance", "min_width", "min_height", "model_generation", "cost_model")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VARIANT_FIELD_NUMBER: _ClassVar[int]
    LORAS_FIELD_NUMBER: _ClassVar[int]
    FRAME_STEP_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_FIELD_NUMBER: _ClassVar[int]
    SIZE_MULTIPLE_FIELD_NUMBER: _ClassVar[int]
    MAX_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MAX_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_STEPS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FPS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    TWO_STAGE_FIELD_NUMBER: _ClassVar[int]
    AUTH_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    MIN_FRAMES_FIELD_NUMBER: _ClassVar[int]
    LATENT_CELL_FIELD_NUMBER: _ClassVar[int]
    MIN_FPS_FIELD_NUMBER: _ClassVar[int]
    MAX_FPS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    MAX_GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    MAX_PROMPT_CHARS_FIELD_NUMBER: _ClassVar[int]
    MAX_LORA_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    VARIANT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_STAGES_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_FIELD_NUMBER: _ClassVar[int]
    MIN_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MIN_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MODEL_GENERATION_FIELD_NUMBER: _ClassVar[int]
    COST_MODEL_FIELD_NUMBER: _ClassVar[int]
    protocol_version: str
    server_version: str
    model_id: str
    model_variant: str
    loras: _containers.RepeatedCompositeFieldContainer[LoraInfo]
    frame_step: int
    max_frames: int
    size_multiple: int
    max_width: int
    max_height: int
    gpu_memory_free_bytes: int
    device: str
    default_steps: int
    default_guidance_scale: float
    default_fps: float
    audio_sample_rate: int
    two_stage: bool
    auth_required: bool
    engine: str
    min_frames: int
    latent_cell: int
    min_fps: float
    max_fps: float
    max_steps: int
    max_guidance_scale: float
    max_prompt_chars: int
    max_lora_weight: float
    variant_source: str
    default_stages: int
    guidance: str
    min_width: int
    min_height: int
    model_generation: str
    cost_model: CostModel
    def __init__(self, protocol_version: _Optional[str] = ..., server_version: _Optional[str] = ..., model_id: _Optional[str] = ..., model_variant: _Optional[str] = ..., loras: _Optional[_Iterable[_Union[LoraInfo, _Mapping]]] = ..., frame_step: _Optional[int] = ..., max_frames: _Optional[int] = ..., size_multiple: _Optional[int] = ..., max_width: _Optional[int] = ..., max_height: _Optional[int] = ..., gpu_memory_free_bytes: _Optional[int] = ..., device: _Optional[str] = ..., default_steps: _Optional[int] = ..., default_guidance_scale: _Optional[float] = ..., default_fps: _Optional[float] = ..., audio_sample_rate: _Optional[int] = ..., two_stage: _Optional[bool] = ..., auth_required: _Optional[bool] = ..., engine: _Optional[str] = ..., min_frames: _Optional[int] = ..., latent_cell: _Optional[int] = ..., min_fps: _Optional[float] = ..., max_fps: _Optional[float] = ..., max_steps: _Optional[int] = ..., max_guidance_scale: _Optional[float] = ..., max_prompt_chars: _Optional[int] = ..., max_lora_weight: _Optional[float] = ..., variant_source: _Optional[str] = ..., default_stages: _Optional[int] = ..., guidance: _Optional[str] = ..., min_width: _Optional[int] = ..., min_height: _Optional[int] = ..., model_generation: _Optional[str] = ..., cost_model: _Optional[_Union[CostModel, _Mapping]] = ...) -> None: ...

class CostModel(_message.Message):
    __slots__ = ("transformer_parameters", "dtype", "attention_tokens", "seconds_per_token_step", "reference_tokens", "passes_per_step", "refine_steps", "fixed_seconds", "seconds_per_pixel_frame", "weights_bytes", "bytes_per_token", "bytes_per_pixel_frame", "measured", "memory_measured", "jobs", "source")
    TRANSFORMER_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    ATTENTION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_PER_TOKEN_STEP_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PASSES_PER_STEP_FIELD_NUMBER: _ClassVar[int]
    REFINE_STEPS_FIELD_NUMBER: _ClassVar[int]
    FIXED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_PER_PIXEL_FRAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_BYTES_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_PIXEL_FRAME_FIELD_NUMBER: _ClassVar[int]
    MEASURED_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MEASURED_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    transformer_parameters: int
    dtype: str
    attention_tokens: float
    seconds_per_token_step: float
    reference_tokens: int
    passes_per_step: int
    refine_steps: int
    fixed_seconds: float
    seconds_per_pixel_frame: float
    weights_bytes: int
    bytes_per_token: float
    bytes_per_pixel_frame: float
    measured: bool
    memory_measured: bool
    jobs: int
    source: str
    def __init__(self, transformer_parameters: _Optional[int] = ..., dtype: _Optional[str] = ..., attention_tokens: _Optional[float] = ..., seconds_per_token_step: _Optional[float] = ..., reference_tokens: _Optional[int] = ..., passes_per_step: _Optional[int] = ..., refine_steps: _Optional[int] = ..., fixed_seconds: _Optional[float] = ..., seconds_per_pixel_frame: _Optional[float] = ..., weights_bytes: _Optional[int] = ..., bytes_per_token: _Optional[float] = ..., bytes_per_pixel_frame: _Optional[float] = ..., measured: _Optional[bool] = ..., memory_measured: _Optional[bool] = ..., jobs: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...

class CameraFrame(_message.Message):
    __slots__ = ("fx", "fy", "cx", "cy", "world_to_camera", "lens_mm")
    FX_FIELD_NUMBER: _ClassVar[int]
    FY_FIELD_NUMBER: _ClassVar[int]
    CX_FIELD_NUMBER: _ClassVar[int]
    CY_FIELD_NUMBER: _ClassVar[int]
    WORLD_TO_CAMERA_FIELD_NUMBER: _ClassVar[int]
    LENS_MM_FIELD_NUMBER: _ClassVar[int]
    fx: float
    fy: float
    cx: float
    cy: float
    world_to_camera: _containers.RepeatedScalarFieldContainer[float]
    lens_mm: float
    def __init__(self, fx: _Optional[float] = ..., fy: _Optional[float] = ..., cx: _Optional[float] = ..., cy: _Optional[float] = ..., world_to_camera: _Optional[_Iterable[float]] = ..., lens_mm: _Optional[float] = ...) -> None: ...

class CameraSettings(_message.Message):
    __slots__ = ("mode", "preset_lora", "trajectory_lora", "weight", "frames", "reference_downscale_factor")
    MODE_FIELD_NUMBER: _ClassVar[int]
    PRESET_LORA_FIELD_NUMBER: _ClassVar[int]
    TRAJECTORY_LORA_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_DOWNSCALE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    mode: CameraMode
    preset_lora: str
    trajectory_lora: str
    weight: float
    frames: _containers.RepeatedCompositeFieldContainer[CameraFrame]
    reference_downscale_factor: int
    def __init__(self, mode: _Optional[_Union[CameraMode, str]] = ..., preset_lora: _Optional[str] = ..., trajectory_lora: _Optional[str] = ..., weight: _Optional[float] = ..., frames: _Optional[_Iterable[_Union[CameraFrame, _Mapping]]] = ..., reference_downscale_factor: _Optional[int] = ...) -> None: ...

class ControlInput(_message.Message):
    __slots__ = ("kind", "lora", "lora_weight", "strength", "frame_strength", "background_strength", "reference_downscale_factor", "width", "height", "num_frames", "has_mask")
    KIND_FIELD_NUMBER: _ClassVar[int]
    LORA_FIELD_NUMBER: _ClassVar[int]
    LORA_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    FRAME_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_DOWNSCALE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    HAS_MASK_FIELD_NUMBER: _ClassVar[int]
    kind: str
    lora: str
    lora_weight: float
    strength: float
    frame_strength: _containers.RepeatedScalarFieldContainer[float]
    background_strength: float
    reference_downscale_factor: int
    width: int
    height: int
    num_frames: int
    has_mask: bool
    def __init__(self, kind: _Optional[str] = ..., lora: _Optional[str] = ..., lora_weight: _Optional[float] = ..., strength: _Optional[float] = ..., frame_strength: _Optional[_Iterable[float]] = ..., background_strength: _Optional[float] = ..., reference_downscale_factor: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., num_frames: _Optional[int] = ..., has_mask: _Optional[bool] = ...) -> None: ...

class LoraWeight(_message.Message):
    __slots__ = ("name", "weight")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    weight: float
    def __init__(self, name: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class ShotManifest(_message.Message):
    __slots__ = ("request_id", "prompt", "negative_prompt", "width", "height", "num_frames", "fps", "seed", "num_inference_steps", "guidance_scale", "camera", "extra_loras", "audio", "shot_name", "client_info", "frame_start", "controls", "stages", "conditions", "tail_frames", "assembly")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    EXTRA_LORAS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    SHOT_NAME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_INFO_FIELD_NUMBER: _ClassVar[int]
    FRAME_START_FIELD_NUMBER: _ClassVar[int]
    CONTROLS_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    TAIL_FRAMES_FIELD_NUMBER: _ClassVar[int]
    ASSEMBLY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    num_frames: int
    fps: float
    seed: int
    num_inference_steps: int
    guidance_scale: float
    camera: CameraSettings
    extra_loras: _containers.RepeatedCompositeFieldContainer[LoraWeight]
    audio: bool
    shot_name: str
    client_info: str
    frame_start: int
    controls: _containers.RepeatedCompositeFieldContainer[ControlInput]
    stages: int
    conditions: _containers.RepeatedCompositeFieldContainer[FrameCondition]
    tail_frames: int
    assembly: Assembly
    def __init__(self, request_id: _Optional[str] = ..., prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., num_frames: _Optional[int] = ..., fps: _Optional[float] = ..., seed: _Optional[int] = ..., num_inference_steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ..., camera: _Optional[_Union[CameraSettings, _Mapping]] = ..., extra_loras: _Optional[_Iterable[_Union[LoraWeight, _Mapping]]] = ..., audio: _Optional[bool] = ..., shot_name: _Optional[str] = ..., client_info: _Optional[str] = ..., frame_start: _Optional[int] = ..., controls: _Optional[_Iterable[_Union[ControlInput, _Mapping]]] = ..., stages: _Optional[int] = ..., conditions: _Optional[_Iterable[_Union[FrameCondition, _Mapping]]] = ..., tail_frames: _Optional[int] = ..., assembly: _Optional[_Union[Assembly, _Mapping]] = ...) -> None: ...

class FrameCondition(_message.Message):
    __slots__ = ("start_frame", "num_frames", "strength", "width", "height")
    START_FRAME_FIELD_NUMBER: _ClassVar[int]
    NUM_FRAMES_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    start_frame: int
    num_frames: int
    strength: float
    width: int
    height: int
    def __init__(self, start_frame: _Optional[int] = ..., num_frames: _Optional[int] = ..., strength: _Optional[float] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class AssemblyWindow(_message.Message):
    __slots__ = ("job_id", "overlap_frames", "keep_frames")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FRAMES_FIELD_NUMBER: _ClassVar[int]
    KEEP_FRAMES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    overlap_frames: int
    keep_frames: int
    def __init__(self, job_id: _Optional[str] = ..., overlap_frames: _Optional[int] = ..., keep_frames: _Optional[int] = ...) -> None: ...

class Assembly(_message.Message):
    __slots__ = ("windows", "image_sequence")
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    windows: _containers.RepeatedCompositeFieldContainer[AssemblyWindow]
    image_sequence: bool
    def __init__(self, windows: _Optional[_Iterable[_Union[AssemblyWindow, _Mapping]]] = ..., image_sequence: _Optional[bool] = ...) -> None: ...

class FrameChunk(_message.Message):
    __slots__ = ("kind", "index", "offset", "data", "end_of_frame", "control")
    KIND_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    END_OF_FRAME_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    kind: FrameKind
    index: int
    offset: int
    data: bytes
    end_of_frame: bool
    control: int
    def __init__(self, kind: _Optional[_Union[FrameKind, str]] = ..., index: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., end_of_frame: _Optional[bool] = ..., control: _Optional[int] = ...) -> None: ...

class SubmitShotRequest(_message.Message):
    __slots__ = ("manifest", "frame")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    manifest: ShotManifest
    frame: FrameChunk
    def __init__(self, manifest: _Optional[_Union[ShotManifest, _Mapping]] = ..., frame: _Optional[_Union[FrameChunk, _Mapping]] = ...) -> None: ...

class SubmitShotResponse(_message.Message):
    __slots__ = ("job_id", "deduplicated", "queue_position", "warnings")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    deduplicated: bool
    queue_position: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[str] = ..., deduplicated: _Optional[bool] = ..., queue_position: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("kind", "filename", "size", "sha256")
    KIND_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    kind: ArtifactKind
    filename: str
    size: int
    sha256: str
    def __init__(self, kind: _Optional[_Union[ArtifactKind, str]] = ..., filename: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job_id", "state", "stage", "step", "total_steps", "eta_seconds", "queue_position", "message", "heartbeat", "progress", "camera_move", "artifacts", "error_code", "timestamp_ms")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CAMERA_MOVE_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    stage: str
    step: int
    total_steps: int
    eta_seconds: float
    queue_position: int
    message: str
    heartbeat: bool
    progress: float
    camera_move: str
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    error_code: str
    timestamp_ms: int
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., stage: _Optional[str] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., eta_seconds: _Optional[float] = ..., queue_position: _Optional[int] = ..., message: _Optional[str] = ..., heartbeat: _Optional[bool] = ..., progress: _Optional[float] = ..., camera_move: _Optional[str] = ..., artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ..., error_code: _Optional[str] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: JobState
    def __init__(self, state: _Optional[_Union[JobState, str]] = ...) -> None: ...

class FetchResultRequest(_message.Message):
    __slots__ = ("job_id", "artifact", "offset")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    artifact: ArtifactKind
    offset: int
    def __init__(self, job_id: _Optional[str] = ..., artifact: _Optional[_Union[ArtifactKind, str]] = ..., offset: _Optional[int] = ...) -> None: ...

class ResultChunk(_message.Message):
    __slots__ = ("offset", "data", "total_size", "sha256", "last", "filename")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    offset: int
    data: bytes
    total_size: int
    sha256: str
    last: bool
    filename: str
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ..., total_size: _Optional[int] = ..., sha256: _Optional[str] = ..., last: _Optional[bool] = ..., filename: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("limit", "states")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    limit: int
    states: _containers.RepeatedScalarFieldContainer[JobState]
    def __init__(self, limit: _Optional[int] = ..., states: _Optional[_Iterable[_Union[JobState, str]]] = ...) -> None: ...

class JobSummary(_message.Message):
    __slots__ = ("job_id", "request_id", "state", "shot_name", "prompt", "created_ms", "finished_ms", "message")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SHOT_NAME_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_MS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    request_id: str
    state: JobState
    shot_name: str
    prompt: str
    created_ms: int
    finished_ms: int
    message: str
    def __init__(self, job_id: _Optional[str] = ..., request_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., shot_name: _Optional[str] = ..., prompt: _Optional[str] = ..., created_ms: _Optional[int] = ..., finished_ms: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobSummary]
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobSummary, _Mapping]]] = ...) -> None: ...
