"""Token auth, TLS, reflection, and health NOT_SERVING while the weights load."""

from __future__ import annotations

import subprocess
import threading
import time

import grpc
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from render_backend.client import ServiceClient
from render_backend.demo import synthetic_shot
from render_backend.engine.ltx2.engine import LTX2Engine
from render_backend.proto import render_pb2 as pb
from render_backend.server.app import BackgroundServer, security_warnings
from render_backend.server.auth import TOKEN_ENV, load_token
from render_backend.server.config import ServerConfig

from .conftest import running_server, wait_serving

TOKEN = "s3cret-token-for-tests"


def _code(fn):
    with pytest.raises(grpc.RpcError) as err:
        fn()
    return err.value.code().name, err.value.details()


def test_token_is_required_for_every_rpc_except_health(engine, tmp_path):
    with running_server(engine, tmp_path, token=TOKEN) as (server, client):
        assert client.capabilities().auth_required is True
        job = client.submit(*synthetic_shot(9, 64, 64, steps=1))
        client.wait(job.job_id, timeout=60)
        for token, words in [(None, "this server needs a token"), ("wrong", "the token was not accepted")]:
            with ServiceClient(server.address, token=token) as other:
                assert other.health() == "SERVING"  # health needs no token
                calls = [other.capabilities, other.list_jobs, lambda: list(other.watch(job.job_id)),
                         lambda: other.cancel(job.job_id),
                         lambda: list(other.fetch_chunks(job.job_id, pb.ARTIFACT_KIND_VIDEO_MP4)),
                         lambda: other.submit(*synthetic_shot(9, 64, 64, steps=1))]
                for call in calls:
                    code, details = _code(call)
                    assert code == "UNAUTHENTICATED" and words in details, details
        assert len(client.list_jobs()) == 1  # the refused submits created nothing


def test_without_a_token_the_server_is_open_and_says_so(served):
    _, client = served
    assert client.capabilities().auth_required is False


def test_load_token_reads_the_file_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert load_token(None) == "from-env"
    (tmp_path / "t").write_text("from-file\n")
    assert load_token(tmp_path / "t") == "from-file"
    with pytest.raises(SystemExit, match="does not exist"):
        load_token(tmp_path / "missing")
    monkeypatch.delenv(TOKEN_ENV)
    assert load_token(None) is None


def test_non_loopback_without_tls_or_token_warns_loudly(tmp_path):
    open_cfg = ServerConfig(host="0.0.0.0", data_dir=tmp_path)
    warnings = security_warnings(open_cfg)
    assert len(warnings) == 2 and "WITHOUT TLS" in warnings[0] and "WITHOUT A TOKEN" in warnings[1]
    assert security_warnings(ServerConfig(host="127.0.0.1", data_dir=tmp_path)) == []
    with pytest.raises(ValueError, match="both --tls-cert and --tls-key"):
        ServerConfig(tls_cert=tmp_path / "c.pem", data_dir=tmp_path)


def _self_signed(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def test_tls_serves_clients_that_trust_the_certificate(engine, tmp_path):
    cert, key = _self_signed(tmp_path)
    cfg = ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path / "data", tls_cert=cert, tls_key=key)
    with BackgroundServer(engine, cfg) as server:
        with ServiceClient(f"localhost:{server.port}", root_cert=cert, timeout=10) as client:
            wait_serving(client)
            assert client.capabilities().protocol_version == "2.1"
        with ServiceClient(f"localhost:{server.port}", timeout=3) as plain:  # no TLS: cannot talk
            code, _ = _code(plain.capabilities)
            assert code == "UNAVAILABLE"


def test_reflection_lists_the_render_and_health_services(served):
    server, _ = served
    with grpc.insecure_channel(server.address) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"ltxrender.v1.RenderService", "grpc.health.v1.Health"} <= services


class _GatedEngine(LTX2Engine):
    """The real engine, whose load() waits for the test to open a gate (to observe the loading phase)."""

    def __init__(self, *a, gate: threading.Event, fail: bool = False, **kw):
        super().__init__(*a, **kw)
        self.gate, self.fail = gate, fail

    def load(self):
        self.gate.wait(30)
        if self.fail:
            raise FileNotFoundError("transformer/diffusion_pytorch_model.safetensors is missing")
        super().load()


def test_health_is_not_serving_while_the_model_loads_then_serving(tiny_model, tmp_path):
    gate = threading.Event()
    cfg = ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, heartbeat_s=0.5)
    with BackgroundServer(_GatedEngine(str(tiny_model), gate=gate), cfg) as server:
        with ServiceClient(server.address) as client:
            assert client.health() == "NOT_SERVING"
            assert client.health("ltxrender.v1.RenderService") == "NOT_SERVING"
            assert _code(client.capabilities) == ("UNAVAILABLE", "model is loading, retry in a few seconds")
            code, details = _code(lambda: client.submit(*synthetic_shot(9, 64, 64, steps=1)))
            assert code == "UNAVAILABLE" and "loading" in details
            gate.set()
            t0 = time.monotonic()
            wait_serving(client)
            assert time.monotonic() - t0 < 30 and client.capabilities().frame_step == 8


def test_a_model_that_fails_to_load_is_reported_and_the_server_stays_up(tiny_model, tmp_path):
    gate = threading.Event()
    gate.set()
    cfg = ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path)
    with BackgroundServer(_GatedEngine(str(tiny_model), gate=gate, fail=True), cfg) as server:
        with ServiceClient(server.address) as client:
            for _ in range(100):
                code, details = _code(client.capabilities)
                if "failed to load" in details:
                    break
                time.sleep(0.05)
            assert code == "UNAVAILABLE" and "safetensors is missing" in details and "restart" in details
            assert client.health() == "NOT_SERVING"
