"""The drill server's HTTP face: a Starlette app over :class:`~drills.server.service.DrillService`.

Why Starlette on uvicorn: a small, typed ASGI toolkit whose streaming responses give Server-Sent Events with
no extra package, whose TestClient tests every route without a socket, and whose few parts (routing,
middleware, forms through python-multipart) are all this server needs; FastAPI's extras (dependency injection,
OpenAPI generation, its own validation layer) would sit on top of the pydantic models the service already
validates with. uvicorn gives the limits we need (``limit_concurrency``, ``backlog``, TLS) as options.

The API, all JSON, authenticated by a personal token (``Authorization: Bearer``, or the console's cookie):

``GET  /api/health``                          no token: is the server up
``GET  /api/whoami``                          the caller: person, role, drill, CSRF token
``GET  /api/drills``  ``POST /api/drills``    list drills; start one (game master; body ``StartBody``)
``GET  /api/drills/{id}``                     the drill's status and scorecard so far
``GET  /api/drills/{id}/events``              every event of its journal
``GET  /api/drills/{id}/stream``              the live journal as Server-Sent Events (``Last-Event-ID``)
``GET  /api/drills/{id}/scorecard``           the scorecard so far
``GET  /api/drills/{id}/comms/{template}``    a comms template prefilled with what the drill knows
``POST /api/drills/{id}/join``                join: your role here and your own kubeconfig
``GET  /api/drills/{id}/kubeconfig``          your own RBAC-limited kubeconfig
``POST /api/drills/{id}/invite``              game master: invite a person (the token is in the answer, once)
``POST /api/drills/{id}/actions/{action}``    ack, declare, role, comms, escalate, ticket, note, hint,
                                              mitigated, resolve, detect; pause, resume, abort, reveal-hint
``POST /login``  ``POST /logout``             the console's token cookie (form field ``token``)

Errors are JSON ``{"error", "hint", "status", "exit_code"}``: the remote CLI turns them back into the same
DrillError (and exit code) the local command would have raised.

Extending (the web console): if a module ``drills.server.console`` exists and defines
``routes(service: DrillService) -> list[starlette.routing.BaseRoute]``, its routes are mounted after the API;
``create_app(config, extra_routes=...)`` adds more. Such routes authenticate with :func:`request_caller`,
read bodies (with the CSRF check forms need) with :func:`read_body`, and render the caller's CSRF token with
``service.auth.csrf_token(caller)``; every action goes through ``service``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drills.adapters.store.people import PeopleStore
from drills.errors import DrillError, NoActiveDrill, SafetyError, ScenarioError, ServerError, UsageError
from drills.server.auth import CSRF_FIELD, CSRF_HEADER, TOKEN_COOKIE, Action, Auth, Caller, FailureLimiter
from drills.server.config import ServerConfig
from drills.server.service import DrillService

log = logging.getLogger(__name__)

#: Seconds between comment lines on an idle stream (keeps proxies from closing it; notices a gone client).
KEEPALIVE_SECONDS = 15.0
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


# ---- the building blocks console routes use -------------------------------------------------------------


def service_of(request: Request) -> DrillService:
    service: DrillService = request.app.state.service
    return service


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def request_caller(request: Request) -> Caller:
    """The authenticated person behind a request (bearer token, else the console's cookie); 401/429 otherwise."""
    auth = service_of(request).auth
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if header and scheme.lower() == "bearer":
        return auth.authenticate(value.strip(), _client(request))
    cookie = request.cookies.get(TOKEN_COOKIE)
    return auth.authenticate(cookie, _client(request), by_cookie=cookie is not None)


async def read_body(request: Request, caller: Caller | None = None) -> dict[str, Any]:
    """The request's JSON object or form fields; 400 when malformed, 403 on a form (or cookie) post
    without the caller's CSRF token, 415 for other content types. Size is capped by the middleware."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in _FORM_TYPES:
        try:
            form = await request.form(max_files=0, max_fields=100)
        except ServerError:
            raise
        except Exception as e:  # python-multipart's and Starlette's parse errors have no common base
            raise ServerError(f"malformed form: {e}", status=400) from None
        data = {k: v for k, v in form.items() if isinstance(v, str)}
        presented = data.pop(CSRF_FIELD, None) or request.headers.get(CSRF_HEADER)
        if caller is not None:
            service_of(request).auth.check_csrf(caller, presented, form=True)
        return data
    if caller is not None:
        service_of(request).auth.check_csrf(caller, request.headers.get(CSRF_HEADER), form=False)
    return json_body(ctype, await request.body())


def json_body(ctype: str, raw: bytes) -> dict[str, Any]:
    """A JSON request body as an object (empty when blank); 400 when malformed, 415 for another type."""
    if not raw.strip():
        return {}
    if ctype not in ("application/json", ""):
        raise ServerError(f"unsupported content type {ctype!r}", hint="send application/json", status=415)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ServerError(f"malformed JSON body: {e}", hint="send one JSON object", status=400) from None
    if not isinstance(data, dict):
        raise ServerError("the body must be a JSON object", status=400)
    return data


def error_response(e: DrillError) -> JSONResponse:
    """A DrillError as the server's JSON error, with the exit code the CLI should end with."""
    if isinstance(e, ServerError):
        status = e.status
    elif isinstance(e, NoActiveDrill):
        status = 404
    elif isinstance(e, UsageError):
        status = 409  # the request is fine; the drill's state refuses it (already paused, ended...)
    elif isinstance(e, ScenarioError):
        status = 422
    elif isinstance(e, SafetyError):
        status = 403
    else:
        status = 500
    return JSONResponse(
        {
            "error": e.message,
            "hint": e.hint,
            "status": status,
            "exit_code": e.exit_code,
            "kind": type(e).__name__,
        },
        status_code=status,
    )


async def _drill_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DrillError)
    return error_response(exc)


# ---- middleware ----------------------------------------------------------------------------------------


class BodyLimit:
    """Refuse request bodies over ``max_bytes``: by Content-Length before reading, or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length < 0 or length > self.max_bytes:
                    await self._refuse(scope, receive, send, length)
                    return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise ServerError(self._message(received), status=413)
            return message

        await self.app(scope, limited, send)

    def _message(self, length: int) -> str:
        return f"request body too large ({length} bytes; at most {self.max_bytes})"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, length: int) -> None:
        e = ServerError(self._message(length) if length >= 0 else "malformed Content-Length", status=413)
        if length < 0:
            e = ServerError("malformed Content-Length", status=400)
        await error_response(e)(scope, receive, send)


class NoStore:
    """Answers are per person and live: never cached; and a few headers browsers act on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {n for n, _ in headers}
                for name, value in (
                    (b"cache-control", b"no-store"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ):
                    if name not in names:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


# ---- routes ------------------------------------------------------------------------------------------


def _sync(fn: Callable[..., Any], *args: Any) -> Any:
    return run_in_threadpool(fn, *args)


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def whoami(request: Request) -> Response:
    caller = await _sync(request_caller, request)
    return JSONResponse(
        {
            "person": caller.person,
            "role": caller.role.value,
            "drill_id": caller.drill_id,
            "csrf_token": service_of(request).auth.csrf_token(caller),
        }
    )


async def drills(request: Request) -> Response:
    service = service_of(request)
    caller = await _sync(request_caller, request)
    if request.method == "POST":
        body = await read_body(request, caller)
        drill_id = await _sync(service.start_drill, caller, body)
        return JSONResponse({"drill_id": drill_id}, status_code=201)
    return JSONResponse({"drills": await _sync(service.list_drills, caller)})


async def drill_status(request: Request) -> Response:
    service = service_of(request)
    caller = await _sync(request_caller, request)
    return JSONResponse(await _sync(service.status, request.path_params["drill_id"], caller))


async def scorecard(request: Request) -> Response:
    service = service_of(request)
    caller = await _sync(request_caller, request)
    status = await _sync(service.status, request.path_params["drill_id"], caller)
    return JSONResponse(status["scorecard"])


async def events(request: Request) -> Response:
    service = service_of(request)
    caller = await _sync(request_caller, request)

    def dump() -> bytes:
        evs = service.events(request.path_params["drill_id"], caller)
        return b'{"events":[' + b",".join(e.model_dump_json(exclude_none=True).encode() for e in evs) + b"]}"

    return Response(await _sync(dump), media_type="application/json")


async def comms_template(request: Request) -> Response:
    service = service_of(request)
    caller = await _sync(request_caller, request)
    text = await _sync(
        service.prefilled, request.path_params["drill_id"], caller, request.path_params["template"]
    )
    return PlainTextResponse(text)


async def join(request: Request) -> Response:
    service = service_of(request)
    caller = await _sync(request_caller, request)
    await read_body(request, caller)
    return JSONResponse(await _sync(service.join, request.path_params["drill_id"], caller))


async def kubeconfig(request: Request) -> Response:
    service = service_of(request)
    caller = await _sync(request_caller, request)
    text = await _sync(service.kubeconfig, request.path_params["drill_id"], caller)
    return PlainTextResponse(text, media_type="application/yaml")


async def invite(request: Request) -> Response:
    service = service_of(request)
    caller = await _sync(request_caller, request)
    body = await read_body(request, caller)
    person, token = await _sync(service.invite, caller, request.path_params["drill_id"], body)
    return JSONResponse(
        {
            "token": token,
            "token_id": person.token_id,
            "person": person.person,
            "role": person.role,
            "drill_id": person.drill_id,
            "expires_at": person.expires_at.isoformat(),
        },
        status_code=201,
    )


async def action(request: Request) -> Response:
    service = service_of(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    drill_id, name = request.path_params["drill_id"], request.path_params["action"]
    if ctype in _FORM_TYPES:
        caller = await _sync(request_caller, request)
        body = await read_body(request, caller)
        result = await _sync(service.act, drill_id, caller, name, body)
        return JSONResponse(result, status_code=201)
    # A JSON post (the CLI's, the bench's): read the size-capped body first, then authenticate, check and
    # act in ONE worker-thread call. Each thread-pool hop waits its turn behind every other post's fsync;
    # two hops per post doubled the queueing that dominated post-to-stream latency under load.
    raw = await request.body()

    def authenticate_and_act() -> dict[str, Any]:
        caller = request_caller(request)
        service.auth.check_csrf(caller, request.headers.get(CSRF_HEADER), form=False)
        return service.act(drill_id, caller, name, json_body(ctype, raw))

    return JSONResponse(await _sync(authenticate_and_act), status_code=201)


async def stream(request: Request) -> Response:
    """The live journal as Server-Sent Events: ``id`` is the event id, ``event`` its type, ``data`` its JSON."""
    service = service_of(request)
    caller = await _sync(request_caller, request)
    hub = await _sync(service.tail, request.path_params["drill_id"], caller)
    last = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    position = hub.position_after(last)

    async def frames() -> AsyncIterator[bytes]:
        nonlocal position
        ready = hub.waiter()
        try:
            yield b"retry: 1000\n\n"
            while True:
                ready.clear()
                items = hub.since(position)
                if items:
                    position += len(items)
                    yield b"".join(i.frame for i in items)
                    continue
                if hub.ended:
                    yield b"event: end\ndata: {}\n\n"
                    return
                try:
                    await asyncio.wait_for(ready.wait(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keep-alive\n\n"
        finally:
            hub.forget(ready)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"x-accel-buffering": "no", "cache-control": "no-store"},
    )


async def login(request: Request) -> Response:
    """The console's login: a form with the person's token; sets the token cookie (HttpOnly, SameSite)."""
    body = await read_body(request)
    token = str(body.get("token", "")).strip()
    service = service_of(request)
    caller = await _sync(service.auth.authenticate, token, _client(request))
    response = JSONResponse({"person": caller.person, "role": caller.role.value})
    secure = request.url.scheme == "https"
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/")
    return response


async def logout(request: Request) -> Response:
    caller = await _sync(request_caller, request)
    await read_body(request, caller)
    response = JSONResponse({"logged_out": caller.person})
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response


API_ROUTES: list[BaseRoute] = [
    Route("/api/health", health),
    Route("/api/whoami", whoami),
    Route("/api/drills", drills, methods=["GET", "POST"]),
    Route("/api/drills/{drill_id}", drill_status),
    Route("/api/drills/{drill_id}/events", events),
    Route("/api/drills/{drill_id}/stream", stream),
    Route("/api/drills/{drill_id}/scorecard", scorecard),
    Route("/api/drills/{drill_id}/comms/{template}", comms_template),
    Route("/api/drills/{drill_id}/join", join, methods=["POST"]),
    Route("/api/drills/{drill_id}/kubeconfig", kubeconfig),
    Route("/api/drills/{drill_id}/invite", invite, methods=["POST"]),
    Route("/api/drills/{drill_id}/actions/{action}", action, methods=["POST"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]


def _console_routes(service: DrillService) -> list[BaseRoute]:
    try:
        module = importlib.import_module("drills.server.console")
    except ModuleNotFoundError as e:
        if e.name != "drills.server.console":
            raise
        return []
    make: Callable[[DrillService], list[BaseRoute]] = module.routes
    return list(make(service))


def make_service(config: ServerConfig) -> DrillService:
    store = PeopleStore(config.people_file)
    limiter = FailureLimiter(
        config.limits.max_failed_logins, config.limits.failed_login_window_seconds, config.clock
    )
    auth = Auth(store, clock=config.clock, limiter=limiter)
    return DrillService(
        store,
        clock=config.clock,
        auth=auth,
        start_defaults=config.start,
        hub_poll_seconds=config.hub_poll_seconds,
        listen=f"{config.host}:{config.port}",
    )


def create_app(
    config: ServerConfig,
    *,
    service: DrillService | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The server's ASGI app: the API, the console's routes if present, then ``extra_routes``."""
    service = service or make_service(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        import anyio.to_thread

        # Each post waits on an fsync in a worker thread: enough workers for a team posting at once.
        anyio.to_thread.current_default_thread_limiter().total_tokens = 100
        try:
            yield
        finally:
            service.close()

    app = Starlette(
        routes=[*API_ROUTES, *_console_routes(service), *extra_routes],
        middleware=[Middleware(NoStore), Middleware(BodyLimit, max_bytes=config.limits.max_body_bytes)],
        exception_handlers={DrillError: _drill_error},
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.config = config
    return app


__all__ = [
    "API_ROUTES",
    "Action",
    "BodyLimit",
    "create_app",
    "error_response",
    "make_service",
    "read_body",
    "request_caller",
    "service_of",
]
