"""The service beside the demo: up for the block, over the demo's own backends, and out of
the way when its port is taken."""

from __future__ import annotations

import socket

import httpx2 as httpx

from meander.demo.run import AGRAWAL
from meander.services.demo_server import DemoServer
from tests.conftest import MakeRuntime
from tests.services.conftest import free_port


def test_the_demo_serves_its_streams_to_anonymous_readers(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(AGRAWAL)
    with DemoServer(runtime, port=free_port()) as url:
        assert url is not None
        assert httpx.get(f"{url}/healthz").status_code == 200
        schema = httpx.get(f"{url}/v1/streams/agrawal/schema")
        assert schema.status_code == 200, schema.text
        assert httpx.get(f"{url}/dashboard").status_code == 200
    try:
        httpx.get(f"{url}/healthz", timeout=2)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("the demo's service still answers after the block")


def test_a_taken_port_means_no_service(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(AGRAWAL)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        with DemoServer(runtime, port=holder.getsockname()[1]) as url:
            assert url is None
