"""GPU render backend: LTX-2 through diffusers behind a gRPC service."""

__version__ = "0.1.0"
