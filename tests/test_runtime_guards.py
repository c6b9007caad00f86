"""Unit checks of the daemon's guards (issue 14): credential masking, the Host allow-list, the
JSONL sink's repair of a torn last line, and the config's refusals. The daemon-level behaviour is in
tests/test_runtime_hostile.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from karmma_edge.edge_runtime.config import load_serve_config
from karmma_edge.edge_runtime.events import JsonLinesSink
from karmma_edge.edge_runtime.http_api import HostPolicy, host_name, token_matches
from karmma_edge.edge_runtime.sources import parse_source, redact
from karmma_edge.errors import ConfigError


def test_passwords_in_source_urls_are_masked() -> None:
    spec = parse_source("rtsp://admin:p@ss:w0rd@10.0.0.5:554/stream1", "rgb")
    assert spec.text == "rtsp://admin:***@10.0.0.5:554/stream1"
    assert spec.target.endswith("p@ss:w0rd@10.0.0.5:554/stream1") and "w0rd" not in repr(spec)
    assert redact("gst:rtspsrc location=rtsp://u:secret@cam/x ! appsink") == "gst:rtspsrc location=rtsp://u:***@cam/x ! appsink"
    assert redact("rtsp://cam.local/stream") == "rtsp://cam.local/stream"
    with pytest.raises(ConfigError) as e:
        parse_source("http://u:secret@cam/x", "rgb")
    assert "secret" not in str(e.value)


def test_host_allow_list() -> None:
    policy = HostPolicy(["jetson.lan"], "127.0.0.1")
    for ok in ("127.0.0.1:8080", "[::1]:8080", "192.168.1.20", "localhost:8080", "JETSON.lan:80", None):
        assert policy.allows(ok), ok
    for bad in ("attacker.example", "attacker.example:8080", "127.0.0.1.attacker.example", "jetson.lan.evil"):
        assert not policy.allows(bad), bad
    assert HostPolicy(["*"], "0.0.0.0").allows("anything.example")
    assert host_name("[fe80::1]:80") == "fe80::1" and host_name("Name:1") == "name"


def test_token_comparison_takes_any_header_bytes() -> None:
    assert token_matches("s3cret-token-0123456", "s3cret-token-0123456")
    assert not token_matches("\xe9t\xe9", "s3cret-token-0123456")


def test_config_refuses_empty_short_and_unauthenticated_remote() -> None:
    for token in ("", "short", "has space in it 0123"):
        with pytest.raises(ConfigError, match="http.token"):
            load_serve_config(None, {"http.token": token})
    with pytest.raises(ConfigError, match="allow-unauthenticated-remote"):
        load_serve_config(None, {"http.host": "0.0.0.0"})
    assert load_serve_config(None, {"http.host": "::1"}).http.token is None


def test_jsonl_sink_cuts_a_torn_tail_and_reports_the_last_seq(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"seq": 4}\n{"seq": 5}\n{"seq": 6, "verb": [{"na')
    sink = JsonLinesSink(path)
    assert sink.last_seq == 5
    sink.write({"seq": 6})
    sink.close()
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [4, 5, 6]


def test_jsonl_sink_in_an_unwritable_place_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="file/p.jsonl"):
        JsonLinesSink(tmp_path / "file" / "p.jsonl")
