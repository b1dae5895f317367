"""Opening a gRPC channel for a profile and turning gRPC failures into sentences a Blender
user can act on ("unreachable", "TLS mismatch", "bad token", ...). No bpy.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from .profiles import ServerProfile, parse_address, resolve_token

# Bigger than the server's 1 MiB result chunks, with room to spare.
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 0),
]

# Reasons (ConnectionProblem.reason), stable strings the UI and tests can check.
UNREACHABLE = "unreachable"
TLS_MISMATCH = "tls"
BAD_TOKEN = "auth"
PROTOCOL = "protocol"
LOADING = "loading"
REJECTED = "rejected"     # the server refused this request (bad frames, unknown LoRA...)
NOT_FOUND = "not_found"
OTHER = "other"


class ConnectionProblem(Exception):
    """A failed call, explained. `reason` is one of the constants above; str() is the advice."""

    def __init__(self, reason: str, message: str, code: str = ""):
        super().__init__(message)
        self.reason = reason
        self.code = code


def open_channel(profile: ServerProfile) -> grpc.Channel:
    """A channel to the profile's server: plaintext, or TLS with an optional CA certificate."""
    host, port = parse_address(profile.address)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if not profile.use_tls:
        return grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)
    root = None
    if profile.ca_cert_path:
        path = Path(profile.ca_cert_path)
        if not path.is_file():
            raise ConnectionProblem(TLS_MISMATCH, f"CA certificate {path} not found; fix the path in the profile")
        root = path.read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=root)
    return grpc.secure_channel(target, credentials, options=_CHANNEL_OPTIONS)


def call_metadata(profile: ServerProfile) -> list[tuple[str, str]]:
    """Bearer token metadata for every call ([] when the profile has no token)."""
    token = resolve_token(profile)
    return [("authorization", f"Bearer {token}")] if token else []


def explain(err: grpc.RpcError, profile: ServerProfile) -> ConnectionProblem:
    """Map a gRPC error to a ConnectionProblem whose message says what to change."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else "") or ""
    low = details.lower()
    name = code.name if code else "UNKNOWN"
    where = profile.address
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return ConnectionProblem(BAD_TOKEN, f"the server at {where} refused the token ({details}); "
                                 f"set the right token in the profile, its token file or ${profile.token_env}", name)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return ConnectionProblem(BAD_TOKEN, f"the token is not allowed to do this on {where} ({details})", name)
    if code == grpc.StatusCode.UNAVAILABLE:
        if any(w in low for w in ("ssl", "tls", "handshake", "certificate", "wrong_version_number")):
            return ConnectionProblem(TLS_MISMATCH, _tls_advice(profile, details), name)
        if any(w in low for w in ("loading", "not serving", "starting")):
            return ConnectionProblem(LOADING, f"the server at {where} is still loading the model; "
                                     f"try again in a minute ({details})", name)
        if any(w in low for w in ("socket closed", "connection reset", "end of stream", "eof")):
            # A plaintext client talking to a TLS port sees the socket closed on it.
            return ConnectionProblem(TLS_MISMATCH, _tls_advice(profile, details), name)
        if any(w in low for w in ("connection refused", "failed to connect", "dns", "name resolution",
                                  "no route", "unreachable", "deadline", "timeout")):
            return ConnectionProblem(UNREACHABLE, f"cannot reach the render server at {where}: is "
                                     f"`render-backend serve` running there and the port open? ({details})", name)
        return ConnectionProblem(UNREACHABLE, f"the server at {where} is unavailable ({details}); "
                                 f"check it is running, then try again", name)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ConnectionProblem(UNREACHABLE, f"the server at {where} did not answer in time; check the "
                                 f"address and firewall", name)
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.OUT_OF_RANGE):
        return ConnectionProblem(REJECTED, details or name, name)
    if code == grpc.StatusCode.NOT_FOUND:
        return ConnectionProblem(NOT_FOUND, details or "not found on the server", name)
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return ConnectionProblem(PROTOCOL, f"the server at {where} does not implement this call "
                                 f"({details}); is it an LTX render server of a matching version?", name)
    return ConnectionProblem(OTHER, f"{name}: {details}" if details else name, name)


def _tls_advice(profile: ServerProfile, details: str) -> str:
    if profile.use_tls:
        return (f"TLS handshake with {profile.address} failed ({details}); if the server runs without "
                f"--tls-cert turn TLS off in the profile, otherwise set its CA certificate")
    return (f"the server at {profile.address} closed the connection ({details}); it probably expects TLS: "
            f"turn TLS on in the profile (and set the CA certificate for a self-signed server)")
