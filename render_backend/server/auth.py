"""Bearer-token auth: every RPC except grpc.health.v1 needs `authorization: Bearer <token>`."""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Optional

import grpc

TOKEN_ENV = "LTX_RENDER_TOKEN"
_OPEN_PREFIXES = ("/grpc.health.v1.Health/",)


def load_token(token_file: Optional[str | Path]) -> Optional[str]:
    """The token from --token-file (first line, stripped), else $LTX_RENDER_TOKEN, else None."""
    if token_file:
        path = Path(token_file).expanduser()
        if not path.is_file():
            raise SystemExit(f"--token-file {path} does not exist; write the token into it "
                             "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))' > FILE`)")
        token = path.read_text().strip()
        if not token:
            raise SystemExit(f"--token-file {path} is empty; put the token on its first line")
        return token
    return os.environ.get(TOKEN_ENV) or None


class BearerAuth(grpc.aio.ServerInterceptor):
    def __init__(self, token: str):
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or details.method.startswith(_OPEN_PREFIXES):
            return handler
        sent = dict(details.invocation_metadata or ()).get("authorization")
        if sent is None:
            return _deny(handler, "this server needs a token: send metadata 'authorization: Bearer <token>' "
                         "(set the token in the add-on's connection settings)")
        sent = sent.encode() if isinstance(sent, str) else sent
        if not hmac.compare_digest(sent, self._expected):
            return _deny(handler, "the token was not accepted: check the token in the connection settings "
                         "against the server's --token-file / LTX_RENDER_TOKEN")
        return handler


def _deny(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that fails with UNAUTHENTICATED."""

    async def unary(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def streaming(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover - makes this an async generator

    kw = {"request_deserializer": handler.request_deserializer,
          "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary, **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming, **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary, **kw)
    return grpc.stream_stream_rpc_method_handler(streaming, **kw)
