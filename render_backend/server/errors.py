"""How failures reach a client: one status per cause, a message that says what to change, never Python text.

`ErrorStatus` (a server interceptor, outermost) turns the deliberate errors raised anywhere in a handler
(ShotError, EngineError, StorageError: each carries its grpc status name) into that status, and anything
else into INTERNAL with a generic message and an incident id; the log gets the traceback under the same id,
so a user can quote it to the server's admin. Without it grpc answers UNKNOWN with the exception's text.
Request bytes that do not decode become INVALID_ARGUMENT the same way (grpc: UNKNOWN + DecodeError).
"""

from __future__ import annotations

import logging
import traceback
import uuid

import grpc

from ..engine.request import EngineError
from .convert import ShotError
from .storage import StorageError

log = logging.getLogger("render_backend.server")
MAX_MESSAGE_CHARS = 1000  # status details travel in a header; clients refuse headers over 16 KiB


def echo(text: str, limit: int = 64) -> str:
    """User input quoted for a message: at most `limit` characters, unprintables escaped, length said."""
    shown = repr(text[:limit])
    return shown if len(text) <= limit else f"{shown[:-1]}...{shown[-1]} ({len(text)} characters)"


def incident(where: str) -> str:
    """Log the exception being handled with a new incident id; returns the message for the client."""
    ident = uuid.uuid4().hex[:12]
    log.error("incident %s in %s:\n%s", ident, where, traceback.format_exc())
    return (f"internal server error (incident {ident}); nothing you sent caused it knowingly: retry, and if it "
            "happens again quote the incident id to the server's admin (the server log has the details)")


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """(status, message) for a deliberate error; None for anything else."""
    if isinstance(exc, (ShotError, EngineError, StorageError)):
        code = getattr(grpc.StatusCode, getattr(exc, "code", "") or "", grpc.StatusCode.INTERNAL)
        return code, str(exc)[:MAX_MESSAGE_CHARS]
    return None


class _Undecodable:
    """What a request deserializes to when its bytes are no valid message (grpc would answer UNKNOWN)."""


def _tolerant(deserialize):
    if deserialize is None:
        return None

    def decode(data: bytes):
        try:
            return deserialize(data)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError and friends
            return _Undecodable()

    return decode


def _decoded(request, method: str):
    if isinstance(request, _Undecodable):
        raise ShotError("INVALID_ARGUMENT", f"the request to {method.rsplit('/', 1)[-1]} is not a valid protobuf "
                        "message; use a client built from this server's ltxrender.v1 protos")
    return request


async def _decoded_stream(requests, method: str):
    async for request in requests:
        yield _decoded(request, method)


async def _fail(exc: BaseException, method: str, context) -> None:
    known = status_of(exc)
    if known is None:
        await context.abort(grpc.StatusCode.INTERNAL, incident(method))
    await context.abort(*known)


class ErrorStatus(grpc.aio.ServerInterceptor):
    """For the RenderService's methods (health and reflection are grpc's own, left as they are)."""

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or not details.method.startswith("/ltxrender.v1.RenderService/"):
            return handler
        method = details.method
        kw = {"request_deserializer": _tolerant(handler.request_deserializer),
              "response_serializer": handler.response_serializer}
        streamed = bool(handler.stream_unary or handler.stream_stream)

        def decoded(request):
            return _decoded_stream(request, method) if streamed else _decoded(request, method)

        if handler.unary_unary or handler.stream_unary:
            behavior = handler.unary_unary or handler.stream_unary

            async def single(request, context):
                try:
                    return await behavior(decoded(request), context)
                except grpc.aio.BaseError:
                    raise  # context.abort(): already a status
                except Exception as e:  # noqa: BLE001 - the point: nothing escapes as UNKNOWN
                    await _fail(e, method, context)

            make = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
            return make(single, **kw)
        behavior = handler.unary_stream or handler.stream_stream

        async def streaming(request, context):
            try:
                async for reply in behavior(decoded(request), context):
                    yield reply
            except grpc.aio.BaseError:
                raise
            except Exception as e:  # noqa: BLE001
                await _fail(e, method, context)

        make = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        return make(streaming, **kw)
