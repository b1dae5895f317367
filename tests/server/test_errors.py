"""A bug anywhere reaches the client as INTERNAL with an incident id it can quote, never as UNKNOWN or as
Python exception text; the server log carries the traceback under the same id; the server keeps serving."""

from __future__ import annotations

import logging
import re

import grpc
import pytest

from render_backend.demo import synthetic_shot
from render_backend.proto import render_pb2 as pb

from .conftest import running_server
from .hostile import PYTHON_TEXT

INCIDENT = re.compile(r"internal server error \(incident ([0-9a-f]{12})\)")


class _BuggyEngine:
    """The real engine, with a bug in its check (prompt 'bug in check') and in its render ('bug in render')."""

    def __init__(self, engine):
        self.engine = engine
        self.loaded = True

    def capabilities(self):
        return self.engine.capabilities()

    def check_request(self, req):
        if "bug in check" in req.prompt:
            return {}["no such key"]  # KeyError
        return self.engine.check_request(req)

    def render(self, req, progress=None, should_cancel=None, on_plan=None):
        if "bug in render" in req.prompt:
            return 1 / 0
        return self.engine.render(req, progress, should_cancel, on_plan)


def _logged(caplog, ident: str) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if ident in r.getMessage())


def test_a_bug_in_a_handler_is_internal_with_an_incident_id_and_a_logged_traceback(engine, tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="render_backend.server")
    with running_server(_BuggyEngine(engine), tmp_path) as (_, client):
        m, controls, masks = synthetic_shot(9, 64, 64, steps=1, prompt="a bug in check")
        with pytest.raises(grpc.RpcError) as err:
            client.submit(m, controls, masks)
        code, details = err.value.code().name, err.value.details()
        found = INCIDENT.search(details)
        assert code == "INTERNAL" and found and not PYTHON_TEXT.search(details), details
        assert "no such key" not in details
        logged = _logged(caplog, found.group(1))
        assert "Traceback" in logged and "KeyError" in logged, logged
        assert list((tmp_path / "incoming").iterdir()) == []
        assert client.health() == "SERVING"


def test_a_bug_during_a_job_fails_it_with_an_incident_id_and_the_queue_goes_on(engine, tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="render_backend.server")
    with running_server(_BuggyEngine(engine), tmp_path) as (_, client):
        m, controls, masks = synthetic_shot(9, 64, 64, steps=1, prompt="a bug in render")
        failed = client.wait(client.submit(m, controls, masks).job_id, timeout=60)
        found = INCIDENT.search(failed.message)
        assert (failed.state, failed.error_code) == (pb.JOB_STATE_FAILED, "INTERNAL") and found, failed.message
        assert not PYTHON_TEXT.search(failed.message) and "division" not in failed.message
        assert "ZeroDivisionError" in _logged(caplog, found.group(1))
        ok = client.wait(client.submit(*synthetic_shot(9, 64, 64, steps=1)).job_id, timeout=60)
        assert ok.state == pb.JOB_STATE_DONE


def test_bytes_that_are_no_request_get_a_status_not_a_crash(served):
    server, client = served
    with grpc.insecure_channel(server.address) as channel:
        for method in ("CancelJob", "GetCapabilities", "ListJobs"):
            call = channel.unary_unary(f"/ltxrender.v1.RenderService/{method}")  # raw bytes both ways
            with pytest.raises(grpc.RpcError) as err:
                call(b"\xff\xff\xff\xff not protobuf", timeout=10)
            assert err.value.code().name == "INVALID_ARGUMENT" and "not a valid protobuf" in err.value.details()
        garbage = b"\xff\xff\xff\xff not protobuf"
        calls = [lambda: channel.stream_unary("/ltxrender.v1.RenderService/SubmitShot")(iter([garbage]), timeout=10),
                 lambda: list(channel.unary_stream("/ltxrender.v1.RenderService/WatchJob")(garbage, timeout=10))]
        for call in calls:
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code().name == "INVALID_ARGUMENT" and "not a valid protobuf" in err.value.details()
    assert client.health() == "SERVING"
