"""The daemon's HTTP API: Starlette routes served by uvicorn on a thread of the daemon's process.

Endpoints: GET /healthz, GET /metrics (Prometheus), GET /v1/events (Server-Sent Events),
POST /v1/sensors/{name} ({"enabled": false}), the live page (GET /, /static/*) and the camera
thumbnail. HEAD is answered wherever GET is.

What a production server must do for a device on a network is configured here rather than written:
uvicorn's pure-Python h11 protocol caps the request head (URL and headers), `limit_concurrency`
caps connections (503 beyond it), the listen backlog is real, and asyncio's accept loop backs off
(and logs) when the process runs out of file descriptors. What uvicorn leaves to the application
is added in the smallest form: a deadline for each request's head (`_DeadlineH11`), the body cap and
body read timeout (`_read_body`), the Host allow-list and the bearer token (`_Guard`).
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.resources
import ipaddress
import json
import logging
import resource
import socket
import threading
import time
from http import HTTPStatus
from typing import Protocol

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from karmma_edge.edge_runtime.config import HttpConfig
from karmma_edge.edge_runtime.events import CLOSED, EventHub

log = logging.getLogger(__name__)

TOKEN_COOKIE = "karmma_edge_token"
TOKEN_FORM = ("<!doctype html><meta charset=utf-8><title>karmma-edge: API token</title>"
              "<form method=get action=/><label>API token (http.token) <input name=token type=password "
              "autofocus></label> <button>Open</button></form>")
FD_RESERVE = 64    # descriptors kept back from the connection cap for engines, sensors, the JSONL file


class RuntimeApi(Protocol):
    """What the HTTP layer needs from the daemon."""

    hub: EventHub
    sse_keepalive_s: float

    def health(self) -> dict: ...
    def metrics_text(self) -> bytes: ...
    def set_sensor_enabled(self, name: str, enabled: bool) -> dict: ...   # raises KeyError for unknown sensors
    def sse_clients_changed(self, delta: int) -> None: ...
    def thumbnail_jpeg(self) -> bytes: ...   # raises LookupError (with the reason) when there is no image


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = dict(headers or {})
    if status == HTTPStatus.UNAUTHORIZED:
        headers["WWW-Authenticate"] = 'Bearer realm="karmma-edge"'
    return JSONResponse({"error": message}, status_code=status, headers=headers)


# --- access control --------------------------------------------------------------------------------


def host_name(header: str) -> str:
    """The name in a Host header, without port or IPv6 brackets, lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostPolicy:
    """Which Host headers are served. DNS rebinding points a name the attacker owns at the device's
    address, so a browser's request carries that name: IP literals, `localhost`, this machine's
    name (and its mDNS `.local` name) and the names the operator lists are served, nothing else."""

    def __init__(self, allowed: list[str], bound: str):
        own = socket.gethostname().lower()
        self.names = {"localhost", own, f"{own}.local", bound.lower()} | {n.lower() for n in allowed}
        self.any = "*" in self.names

    def allows(self, header: str | None) -> bool:
        if header is None or self.any:   # no Host at all is not a browser, hence not rebinding
            return True
        name = host_name(header)
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return name in self.names


def token_matches(given: str, token: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header may hold any Latin-1 byte.
    return hmac.compare_digest(given.encode("latin-1", "replace"), token.encode())


class _Guard:
    """ASGI middleware run before any route: URL length, Host allow-list, bearer token, access log,
    and headers every response carries. The token may come as `Authorization: Bearer`, as the
    HttpOnly cookie the page gets, or (GET / only, the page's entry) as `?token=`, which sets the
    cookie so the page's EventSource and <img> requests, which cannot send headers, carry it."""

    def __init__(self, app, cfg: HttpConfig):
        self.app, self.cfg = app, cfg
        self.hosts = HostPolicy(cfg.allowed_hosts, cfg.host)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        status_box = {"status": 0}

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
                message["headers"] = list(message.get("headers", [])) + [
                    (b"x-content-type-options", b"nosniff"), (b"cross-origin-resource-policy", b"same-origin")]
            await send(message)

        response = self._refusal(request)
        if response is not None:
            await response(scope, receive, send_with_headers)
        else:
            if self.cfg.token and request.query_params.get("token") and request.url.path == "/":
                scope.setdefault("state", {})["set_token_cookie"] = True
            await self.app(scope, receive, send_with_headers)
        # Path only: the query string may hold the token.
        log.debug("%s %s %s %s", request.client.host if request.client else "-", request.method,
                  request.url.path, status_box["status"])

    def _refusal(self, request: Request) -> Response | None:
        # h11 caps a head that arrives in pieces; one that arrives whole in a single read is
        # measured here.
        if sum(len(k) + len(v) for k, v in request.scope["headers"]) > self.cfg.max_header_bytes:
            return _error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                          f"the headers are larger than {self.cfg.max_header_bytes} bytes")
        if len(request.scope.get("raw_path", b"")) > self.cfg.max_url_chars:
            return _error(HTTPStatus.REQUEST_URI_TOO_LONG, f"the URL is longer than {self.cfg.max_url_chars} characters")
        if not self.hosts.allows(request.headers.get("host")):
            return _error(HTTPStatus.MISDIRECTED_REQUEST,
                          "this Host is not served; add the name to http.allowed_hosts in the serve config")
        token = self.cfg.token
        if not token:
            return None
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and token_matches(auth[7:].strip(), token):
            return None
        if token_matches(request.cookies.get(TOKEN_COOKIE, ""), token):
            return None
        if request.url.path == "/":
            if token_matches(request.query_params.get("token", ""), token):
                return None
            # A browser opening the page: a form that comes back as /?token=..., no script needed.
            return HTMLResponse(TOKEN_FORM, status_code=HTTPStatus.UNAUTHORIZED,
                                headers={"Content-Security-Policy": "default-src 'none'; form-action 'self'",
                                         "WWW-Authenticate": 'Bearer realm="karmma-edge"'})
        return _error(HTTPStatus.UNAUTHORIZED, "this daemon needs its API token: send 'Authorization: Bearer "
                                               "<token>', or open the page as /?token=<token>")


# --- the API ---------------------------------------------------------------------------------------

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def _read_body(request: Request, cfg: HttpConfig) -> bytes:
    """The request body, at most `max_body_bytes` (413 beyond), all within `read_timeout_s` (408)."""
    # The answer closes the connection: the rest of the body is not read, not even to discard it.
    too_large = HTTPException(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is larger than {cfg.max_body_bytes} "
                              "bytes", headers={"Connection": "close"})
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cfg.max_body_bytes:
        raise too_large

    async def read() -> bytes:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > cfg.max_body_bytes:
                raise too_large
        return bytes(body)

    try:
        return await asyncio.wait_for(read(), cfg.read_timeout_s)
    except asyncio.TimeoutError:
        raise HTTPException(HTTPStatus.REQUEST_TIMEOUT, "the body did not arrive in time",
                            headers={"Connection": "close"}) from None


def _json_object(body: bytes) -> dict:
    try:
        value = json.loads(body or b"null")
    except (ValueError, RecursionError) as e:   # ValueError covers bad UTF-8 as well as bad JSON
        raise HTTPException(HTTPStatus.BAD_REQUEST, f"body is not JSON: {str(e)[:200]}") from None
    if not isinstance(value, dict):
        raise HTTPException(HTTPStatus.BAD_REQUEST, 'body must be a JSON object such as {"enabled": false}')
    return value


# long: the routes are closures over `api` and `cfg`; kept together, this one function is the whole HTTP API.
def build_app(api: RuntimeApi, cfg: HttpConfig) -> Starlette:
    async def healthz(request: Request) -> Response:
        return JSONResponse(api.health())

    async def metrics(request: Request) -> Response:
        return Response(api.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    async def set_sensor(request: Request) -> Response:
        # application/json only: a page on another origin cannot send it without a CORS preflight,
        # which this server never grants, so it cannot mute a sensor behind the user's back.
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise HTTPException(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the body as Content-Type: application/json")
        body = _json_object(await _read_body(request, cfg))
        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            raise HTTPException(HTTPStatus.BAD_REQUEST, 'give {"enabled": true} or {"enabled": false}')
        try:
            return JSONResponse(api.set_sensor_enabled(request.path_params["name"], enabled))
        except KeyError as e:
            raise HTTPException(HTTPStatus.NOT_FOUND, str(e.args[0])) from None

    async def events(request: Request) -> Response:
        """One `prediction` event per window (data: the prediction's JSON, id: its sequence number)
        and a comment line every keep-alive period so proxies and clients see the stream is open."""
        if request.method == "HEAD":
            return Response(media_type="text/event-stream", headers=SSE_HEADERS)

        async def stream():
            # Subscribed inside the generator: a client gone before the first byte never subscribes.
            sub = api.hub.subscribe_async(asyncio.get_running_loop())
            api.sse_clients_changed(+1)
            try:
                yield b": connected\n\n"
                while True:
                    try:
                        message = await asyncio.wait_for(sub.get(), api.sse_keepalive_s)
                    except asyncio.TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if message is CLOSED:
                        return
                    seq, data = message
                    yield f"id: {seq}\nevent: prediction\ndata: {data}\n\n".encode()
            finally:
                api.hub.unsubscribe(sub)
                api.sse_clients_changed(-1)

        return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)

    async def page(request: Request) -> Response:
        response = Response(static_file("index.html"), media_type=STATIC_TYPES["index.html"], headers=PAGE_HEADERS)
        if request.scope.get("state", {}).get("set_token_cookie"):
            response.set_cookie(TOKEN_COOKIE, cfg.token, httponly=True, samesite="strict", path="/")
        return response

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_TYPES or name == "index.html":
            raise HTTPException(HTTPStatus.NOT_FOUND, f"no static file {name}")
        return Response(static_file(name), media_type=STATIC_TYPES[name], headers=PAGE_HEADERS)

    async def thumbnail(request: Request) -> Response:
        """The camera's newest frame as a small JPEG (re-encoded at most twice a second), for this
        daemon's own page only: a browser tells where a request comes from in Sec-Fetch-Site."""
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise HTTPException(HTTPStatus.FORBIDDEN, "the camera thumbnail is served to this daemon's page only")
        try:
            jpeg = api.thumbnail_jpeg()
        except LookupError as e:
            raise HTTPException(HTTPStatus.NOT_FOUND, str(e.args[0])) from None
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = exc.detail
        if exc.status_code == HTTPStatus.NOT_FOUND and message == HTTPStatus.NOT_FOUND.phrase:
            message = f"no such endpoint {request.url.path}"
        elif exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            message = f"{request.method} not allowed on {request.url.path}"
        return _error(exc.status_code, message, exc.headers)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/v1/sensors/{name:str}", set_sensor, methods=["POST"]),
        Route("/v1/events", events, methods=["GET"]),
        Route("/", page, methods=["GET"]),
        Route("/static/{name:str}", static, methods=["GET"]),
        Route("/v1/sensors/rgb/thumbnail.jpg", thumbnail, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.add_middleware(_Guard, cfg=cfg)
    return app


# --- the live page ---------------------------------------------------------------------------------

STATIC_TYPES = {"index.html": "text/html; charset=utf-8", "page.js": "text/javascript; charset=utf-8",
                "page.css": "text/css; charset=utf-8"}
# The page loads nothing but its own files and this daemon's API: it must work on a device with no
# network, and the policy makes the browser refuse anything else (no CDN, fonts or beacons; data:
# only for the empty favicon).
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; connect-src 'self'; "
                                           "frame-ancestors 'none'",
                "Cache-Control": "no-cache"}


def static_file(name: str) -> bytes:
    return importlib.resources.files("karmma_edge.edge_runtime").joinpath("static", name).read_bytes()


# --- the server ------------------------------------------------------------------------------------


class _DeadlineH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head. uvicorn arms its keep-alive
    timer only after a response and restarts it on every byte received, so a client that connects
    and sends nothing, or half a request, or a byte at a time (slowloris), would hold its
    connection and file descriptor for ever."""

    head_timeout_s = 5.0

    def connection_made(self, transport) -> None:   # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()

    def _arm_head_deadline(self) -> None:
        self.loop.call_later(self.head_timeout_s, self._head_deadline, self.cycle)

    def _head_deadline(self, cycle) -> None:
        # Still the request (or none) that was current when the deadline was set, and answered:
        # no new request head arrived in time.
        if self.cycle is cycle and (cycle is None or cycle.response_complete) and not self.transport.is_closing():
            self.transport.close()


def connection_cap(wanted: int) -> int:
    """`wanted`, lowered so that open connections can never use up the process's file descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(8, min(wanted, soft - FD_RESERVE))


def listen_socket(host: str, port: int, backlog: int) -> socket.socket:
    """Bound and listening before the daemon says it is: a client that connects at once is queued,
    not refused. Raises OSError."""
    family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class _OncePerMinute(logging.Filter):
    """uvicorn logs every malformed request and every connection over the cap: a client could fill
    the journal. One line per distinct message per minute, with a count of those held back."""

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now, key = time.monotonic(), str(record.msg)
        at, held = self._last.get(key, (-float("inf"), 0))
        if now - at < 60:
            self._last[key] = (at, held + 1)
            return False
        self._last[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more in the last minute)"
        return True


class ApiServer:
    """uvicorn serving `build_app` on a thread of its own; the daemon's main thread keeps the
    signals and calls `stop`."""

    def __init__(self, cfg: HttpConfig, api: RuntimeApi):
        self.socket = listen_socket(cfg.host, cfg.port, cfg.backlog)
        protocol = type("DeadlineH11", (_DeadlineH11,), {"head_timeout_s": cfg.read_timeout_s})
        self.config = uvicorn.Config(
            build_app(api, cfg), http=protocol, lifespan="off", log_config=None, access_log=False,
            server_header=False, proxy_headers=False, backlog=cfg.backlog,
            limit_concurrency=connection_cap(cfg.max_connections), timeout_keep_alive=cfg.keepalive_s,
            h11_max_incomplete_event_size=cfg.max_header_bytes, timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(self.config)
        uvicorn_log = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, _OncePerMinute) for f in uvicorn_log.filters):
            uvicorn_log.addFilter(_OncePerMinute())
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="http", daemon=True)
        self._resource_logged = -float("inf")

    async def _serve(self) -> None:
        asyncio.get_running_loop().set_exception_handler(self._loop_error)
        await self.server.serve(sockets=[self.socket])

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """Out of file descriptors, asyncio stops accepting for a second and says so with a
        traceback, every second: one line a minute is enough, and it names the fix."""
        if not isinstance(context.get("exception"), OSError):
            loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self._resource_logged >= 60:
            self._resource_logged = now
            log.error("%s (%s): new connections wait meanwhile; raise the process's file limit (LimitNOFILE=) "
                      "or lower http.max_connections", context.get("message"), context["exception"])

    @property
    def address(self) -> tuple[str, int]:
        return self.socket.getsockname()[:2]

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.socket.close()
