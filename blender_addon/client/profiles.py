"""Connection profiles: where the render server is and how to log in. No bpy.

The token never lives in the .blend: it comes from the add-on preferences (user config),
a token file, or an environment variable, in that order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 50051
TOKEN_ENV = "LTX_RENDER_TOKEN"


@dataclass(frozen=True)
class ServerProfile:
    """One render server. address is "host:port" (IPv6 as "[::1]:50051")."""

    name: str
    address: str
    use_tls: bool = False
    ca_cert_path: str = ""   # PEM; empty = system roots (only with TLS)
    token: str = ""          # kept in the add-on preferences, never in scene data
    token_file: str = ""     # file whose first line is the token
    token_env: str = TOKEN_ENV


def parse_address(address: str) -> tuple[str, int]:
    """"host:port" -> (host, port); a clear error for anything else."""
    text = address.strip()
    hint = f"try 'localhost:{DEFAULT_PORT}'"
    if not text:
        raise ValueError(f"server address is empty; {hint}")
    if "://" in text:
        raise ValueError(f"server address must be host:port without a scheme (got {address!r}); "
                         f"turn on TLS in the profile instead of writing https://")
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
    else:
        host, sep, port_text = text.rpartition(":")
        if ":" in host:
            raise ValueError(f"IPv6 addresses need brackets (got {address!r}); try '[{host}]:{port_text}'")
    if not sep or not host:
        raise ValueError(f"server address must be host:port (got {address!r}); {hint}")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"port must be a number from 1 to 65535 (got {port_text!r} in {address!r}); {hint}")
    return host, int(port_text)


def profile_problems(profile: ServerProfile) -> list[str]:
    """Everything wrong with a profile, each as an instruction; [] when it is usable."""
    problems = []
    if not profile.name.strip():
        problems.append("give the profile a name")
    try:
        parse_address(profile.address)
    except ValueError as exc:
        problems.append(str(exc))
    if profile.ca_cert_path:
        if not profile.use_tls:
            problems.append("a CA certificate is set but TLS is off; turn TLS on or clear the certificate")
        elif not Path(profile.ca_cert_path).is_file():
            problems.append(f"CA certificate {profile.ca_cert_path} not found; pick the server's PEM file")
    if profile.token_file and not Path(profile.token_file).is_file():
        problems.append(f"token file {profile.token_file} not found; fix the path or clear it")
    return problems


def resolve_token(profile: ServerProfile, environ: dict | None = None) -> str:
    """The bearer token: preferences, then token file, then $LTX_RENDER_TOKEN; "" if none."""
    if profile.token.strip():
        return profile.token.strip()
    if profile.token_file:
        lines = Path(profile.token_file).read_text(encoding="utf-8").strip().splitlines()
        if lines and lines[0].strip():
            return lines[0].strip()
        raise ValueError(f"token file {profile.token_file} is empty; write the server's token on its first line")
    env = os.environ if environ is None else environ
    return env.get(profile.token_env, "").strip() if profile.token_env else ""
