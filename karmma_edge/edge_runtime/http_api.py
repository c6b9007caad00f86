"""The daemon's HTTP API on the standard library's ThreadingHTTPServer (no web framework to install
on the device): /healthz, /metrics, /v1/events (Server-Sent Events), POST /v1/sensors/{name}, and
the live page: GET / (static files from the package's `static/` folder) and the camera thumbnail.

Routes are a table of (method, path pattern) -> handler so later endpoints (a status page, a camera
thumbnail, a microphone level) are one entry each.
"""

from __future__ import annotations

import hmac
import importlib.resources
import json
import logging
import queue
import re
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Protocol

from prometheus_client import CONTENT_TYPE_LATEST

from karmma_edge.edge_runtime.events import CLOSED, EventHub

log = logging.getLogger(__name__)


class RuntimeApi(Protocol):
    """What the HTTP layer needs from the daemon."""

    hub: EventHub
    token: str | None
    sse_keepalive_s: float

    def health(self) -> dict: ...
    def metrics_text(self) -> bytes: ...
    def set_sensor_enabled(self, name: str, enabled: bool) -> dict: ...   # raises KeyError for unknown sensors
    def sse_clients_changed(self, delta: int) -> None: ...
    def thumbnail_jpeg(self) -> bytes: ...   # raises LookupError (with the reason) when there is no image


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


Handler = Callable[["ApiRequestHandler", "re.Match[str]"], None]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES.append((method, re.compile(pattern + r"\Z"), fn))
        return fn
    return register


class ApiRequestHandler(BaseHTTPRequestHandler):
    server: "ApiServer"
    protocol_version = "HTTP/1.0"   # one request per connection: SSE streams end when the socket closes

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        matched_path = False
        for m, pattern, fn in ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            matched_path = True
            if m == method:
                try:
                    fn(self, match)
                except ApiError as e:
                    self.send_json({"error": str(e)}, e.status)
                except (BrokenPipeError, ConnectionResetError):
                    pass   # the client went away; nothing to answer
                return
        if matched_path:
            self.send_json({"error": f"{method} not allowed on {path}"}, HTTPStatus.METHOD_NOT_ALLOWED)
        else:
            self.send_json({"error": f"no such endpoint {path}"}, HTTPStatus.NOT_FOUND)

    @property
    def api(self) -> RuntimeApi:
        return self.server.api

    def send_json(self, body: dict, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_body(json.dumps(body).encode(), "application/json", status)

    def send_body(self, data: bytes, content_type: str, status: HTTPStatus = HTTPStatus.OK,
                  headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if status == HTTPStatus.UNAUTHORIZED:
            self.send_header("WWW-Authenticate", 'Bearer realm="karmma-edge"')
        self.end_headers()
        self.wfile.write(data)

    def read_json(self) -> dict:
        # application/json only: a page on another origin cannot send it without a CORS preflight,
        # which this server never grants, so it cannot mute a sensor behind the user's back.
        if self.headers.get_content_type() != "application/json":
            raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the body as Content-Type: application/json")
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except json.JSONDecodeError as e:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, 'body must be a JSON object such as {"enabled": false}')
        return body

    def require_token(self) -> None:
        token = self.api.token
        if not token:
            return
        given = self.headers.get("Authorization", "")
        if not (given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip(), token)):
            raise ApiError(HTTPStatus.UNAUTHORIZED, "this endpoint needs the header 'Authorization: Bearer <token>'")

    def log_message(self, format: str, *args) -> None:   # route the server's access log to logging
        log.debug("%s %s", self.address_string(), format % args)


@route("GET", "/healthz")
def _healthz(req: ApiRequestHandler, _: re.Match) -> None:
    req.send_json(req.api.health())


@route("GET", "/metrics")
def _metrics(req: ApiRequestHandler, _: re.Match) -> None:
    req.send_body(req.api.metrics_text(), CONTENT_TYPE_LATEST)


@route("POST", "/v1/sensors/(?P<name>[a-z]+)")
def _set_sensor(req: ApiRequestHandler, match: re.Match) -> None:
    req.require_token()
    body = req.read_json()
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise ApiError(HTTPStatus.BAD_REQUEST, 'give {"enabled": true} or {"enabled": false}')
    try:
        req.send_json(req.api.set_sensor_enabled(match["name"], enabled))
    except KeyError as e:
        raise ApiError(HTTPStatus.NOT_FOUND, str(e.args[0])) from None


@route("GET", "/v1/events")
def _events(req: ApiRequestHandler, _: re.Match) -> None:
    """One `prediction` event per window (data: the prediction's JSON, id: its sequence number) and a
    comment line every keep-alive period so proxies and clients see the stream is open."""
    api = req.api
    sub = api.hub.subscribe()
    api.sse_clients_changed(+1)
    try:
        req.send_response(HTTPStatus.OK)
        req.send_header("Content-Type", "text/event-stream")
        req.send_header("Cache-Control", "no-cache")
        req.send_header("X-Accel-Buffering", "no")
        req.end_headers()
        req.wfile.write(b": connected\n\n")
        req.wfile.flush()
        while True:
            try:
                message = sub.get(timeout=api.sse_keepalive_s)
            except queue.Empty:
                req.wfile.write(b": keep-alive\n\n")
                req.wfile.flush()
                continue
            if message is CLOSED:
                return
            seq, data = message
            req.wfile.write(f"id: {seq}\nevent: prediction\ndata: {data}\n\n".encode())
            req.wfile.flush()
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        return   # the client disconnected: forget it, the runtime carries on
    finally:
        api.hub.unsubscribe(sub)
        api.sse_clients_changed(-1)


# --- the live page ---------------------------------------------------------------------------------

STATIC_TYPES = {"index.html": "text/html; charset=utf-8", "page.js": "text/javascript; charset=utf-8",
                "page.css": "text/css; charset=utf-8"}
# The page loads nothing but its own files and this daemon's API: it must work on a device with no
# network, and the policy makes the browser refuse anything else (no CDN, fonts or beacons; data:
# only for the empty favicon).
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; connect-src 'self'; "
                                           "frame-ancestors 'none'",
                "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def static_file(name: str) -> bytes:
    return importlib.resources.files("karmma_edge.edge_runtime").joinpath("static", name).read_bytes()


@route("GET", "/")
def _page(req: ApiRequestHandler, _: re.Match) -> None:
    req.send_body(static_file("index.html"), STATIC_TYPES["index.html"], headers=PAGE_HEADERS)


@route("GET", r"/static/(?P<name>[a-z]+\.[a-z]+)")
def _static(req: ApiRequestHandler, match: re.Match) -> None:
    name = match["name"]
    if name not in STATIC_TYPES:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no static file {name}")
    req.send_body(static_file(name), STATIC_TYPES[name], headers=PAGE_HEADERS)


@route("GET", "/v1/sensors/rgb/thumbnail.jpg")
def _thumbnail(req: ApiRequestHandler, _: re.Match) -> None:
    """The camera's newest frame as a small JPEG (re-encoded at most twice a second)."""
    try:
        jpeg = req.api.thumbnail_jpeg()
    except LookupError as e:
        raise ApiError(HTTPStatus.NOT_FOUND, str(e.args[0])) from None
    req.send_body(jpeg, "image/jpeg", headers={"Cache-Control": "no-store"})


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True          # an open SSE stream never holds up shutdown
    allow_reuse_address = True

    def __init__(self, host: str, port: int, api: RuntimeApi):
        super().__init__((host, port), ApiRequestHandler)
        self.api = api
