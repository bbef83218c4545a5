"""The web console's routes: server-rendered pages over :class:`~drills.server.service.DrillService`.

Every page is HTML rendered by Jinja2 with autoescaping on, from the views of :mod:`.views`; every action is a
plain form post that the route hands to ``DrillService.act`` (the same validation, roles and events as the
JSON API and the CLI) and answers with a redirect back to the page (post/redirect/get), so the console works
without JavaScript and from the keyboard. The one script (``static/console.js``) redraws the read-only panels
when the drill's Server-Sent Events stream says something happened.

Signing in: the person pastes their personal token once; the console checks it and keeps it in the
``drills_token`` cookie (HttpOnly, SameSite=Strict), which the rest of the server also accepts. Every form
carries the person's CSRF token (:meth:`~drills.server.auth.Auth.csrf_token`), checked before anything is
done. Errors are shown on the page they came from; a token is never put in a URL or a page.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from drills.adapters.files.scenarios import load_policy
from drills.adapters.store import paths
from drills.engine import comms
from drills.errors import DrillError, ServerError
from drills.model.events import EVENT_TYPES, Event
from drills.model.policy import Policy, SlaTargets
from drills.reporting.report import render_html
from drills.runner.observe import targets_for
from drills.server.app import error_response, read_body, request_caller
from drills.server.auth import TOKEN_COOKIE, Action, Caller
from drills.server.console import views
from drills.server.console.pages import PREFIX, render
from drills.server.service import DrillService

#: Form fields of a comms form are ``field.<key>``: the template's placeholders by key.
FIELD_PREFIX = "field."
#: What a redirect after an action may say (a code, never user text, goes in the URL).
DONE = {
    "ack": "Acknowledged.",
    "declare": "Severity declared.",
    "role": "Role assigned.",
    "comms": "Message posted.",
    "escalate": "Escalation recorded.",
    "mitigated": "Impact reduction reported.",
    "note": "Note added.",
    "resolve": "Incident resolved.",
    "pause": "Drill paused.",
    "resume": "Drill resumed.",
    "abort": "Abort requested: the runner reverts the fault and ends the drill.",
    "reveal-hint": "Hint revealed.",
    "hint": "Hint taken.",
    "signed-in": "Signed in.",
}
#: Which page an action's form lives on, to go back to.
GM_ACTIONS = frozenset({"pause", "resume", "abort", "reveal-hint"})
#: The console's form names for the service's actions (the game master "reveals" the next hint).
ACTION_NAMES = {"hint": "reveal-hint"}


class Console:
    """The console's handlers over one service (see the module docstring)."""

    def __init__(
        self,
        service: DrillService,
        *,
        policy: Policy | None = None,
        stream_url: Callable[[str], str] | None = None,
    ) -> None:
        self.service = service
        self.policy = policy
        self.stream_url = stream_url or (lambda drill_id: f"/api/drills/{quote(drill_id)}/stream")

    # ---- who is asking --------------------------------------------------------------------------------

    async def caller(self, request: Request) -> Caller:
        caller: Caller = await run_in_threadpool(request_caller, request)
        return caller

    def _person(self, caller: Caller) -> views.Person:
        return views.Person(caller.person, caller.role.value)

    def _now(self) -> datetime:
        return self.service.clock.now()

    def _targets(self, events: list[Event]) -> SlaTargets:
        return targets_for(events, self.policy)

    # ---- pages --------------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        try:
            caller = await self.caller(request)
        except ServerError as e:
            if e.status == 401:
                return self._to_login(request)
            raise
        drills = await run_in_threadpool(self.service.list_drills, caller)
        rows = [
            {
                "drill_id": d["drill_id"],
                "title": d.get("scenario") or d["drill_id"],
                "state": d.get("outcome") or ("running" if d.get("served") else "not served here"),
            }
            for d in drills
        ]
        return HTMLResponse(
            render(
                "index.html.j2",
                drills=rows,
                person=self._person(caller),
                csrf_token=self.service.auth.csrf_token(caller),
                scenarios=_shipped_scenarios(),
                **_flash(request),
            )
        )

    async def start(self, request: Request) -> Response:
        """The game master starts a drill; the answer is their view of it once its journal exists."""
        caller = await self.caller(request)
        form = await read_body(request, caller)
        body: dict[str, Any] = {"scenario": _text(form, "scenario").strip()}
        if _text(form, "trainee").strip():
            body["trainee"] = _text(form, "trainee").strip()
        try:
            if _text(form, "time_budget_minutes").strip():
                body["time_budget_seconds"] = float(_text(form, "time_budget_minutes")) * 60
            if _text(form, "wrap_up_seconds").strip():
                body["wrap_up_seconds"] = float(_text(form, "wrap_up_seconds"))
        except ValueError:
            return RedirectResponse(
                f"{PREFIX}/?{urlencode({'error': 'time budget and wrap-up are numbers'})}", 303
            )
        try:
            drill_id = await run_in_threadpool(self.service.start_drill, caller, body)
        except ServerError as e:
            if e.status in (401, 403, 429):
                raise
            return RedirectResponse(_with_error(PREFIX + "/", e), 303)
        except DrillError as e:  # a scenario that does not load, a cluster that refuses: said on the page
            return RedirectResponse(_with_error(PREFIX + "/", e), 303)
        return RedirectResponse(f"{PREFIX}/drills/{quote(drill_id)}/gm", 303)

    async def login_form(self, request: Request) -> Response:
        nxt = _safe_next(request.query_params.get("next", ""))
        flash = "That token was not accepted." if request.query_params.get("failed") else ""
        return HTMLResponse(
            render("login.html.j2", next=nxt, csrf_token="", flash=flash, flash_kind="error" if flash else "")
        )

    async def login(self, request: Request) -> Response:
        form = await request.form()
        token = _text(form, "token")
        nxt = _safe_next(_text(form, "next"))
        client = request.client.host if request.client else "unknown"
        try:
            await run_in_threadpool(self.service.auth.authenticate, token, client)
        except ServerError as e:
            if e.status == 429:
                return HTMLResponse(
                    render("login.html.j2", next=nxt, csrf_token="", flash=e.message, flash_kind="error"),
                    status_code=429,
                )
            return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': nxt, 'failed': 1})}", 303)
        response = RedirectResponse(_with_flash(nxt or PREFIX + "/", "signed-in"), 303)
        response.set_cookie(
            TOKEN_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def logout(self, request: Request) -> Response:
        caller = await self.caller(request)
        await read_body(request, caller)  # the CSRF check: no page elsewhere signs a person out
        response = RedirectResponse(PREFIX + "/login", 303)
        response.delete_cookie(TOKEN_COOKIE, path="/")
        return response

    async def drill_home(self, request: Request) -> Response:
        caller = await self.caller(request)
        drill_id = request.path_params["drill_id"]
        page = "gm" if caller.may(Action.GAME_MASTER) else "respond"
        return RedirectResponse(f"{PREFIX}/drills/{quote(drill_id)}/{page}", 303)

    async def _page(self, request: Request, kind: str, live: bool) -> Response:
        try:
            caller = await self.caller(request)
        except ServerError as e:
            if e.status == 401 and not live:
                return self._to_login(request)
            raise
        drill_id = request.path_params["drill_id"]
        if kind == "gm":
            caller.require(Action.GAME_MASTER, drill_id)
        events = await run_in_threadpool(self.service.events, drill_id, caller)
        now, targets = self._now(), self._targets(events)
        view: views.GameMasterView | views.ResponderView
        if kind == "gm":
            view = views.game_master_view(events, now, targets)
        else:
            view = views.responder_view(events, now, targets)
        base = f"{PREFIX}/drills/{quote(drill_id)}"
        context: dict[str, Any] = {
            "v": view,
            "drill_id": drill_id,
            "person": self._person(caller),
            "csrf_token": self.service.auth.csrf_token(caller),
            "action_url": f"{base}/do",
            "live_url": f"{base}/{kind}/live",
            "stream_url": self.stream_url(drill_id),
            "event_types": " ".join(EVENT_TYPES),
            "open_template": request.query_params.get("open", ""),
        }
        if live:
            name = "_gm_parts.html.j2" if kind == "gm" else "_respond_live.html.j2"
            return HTMLResponse(render(name, **context), headers={"Cache-Control": "no-store"})
        context.update(_flash(request))
        return HTMLResponse(
            render("gm.html.j2" if kind == "gm" else "respond.html.j2", **context),
            headers={"Cache-Control": "no-store"},
        )

    async def game_master(self, request: Request) -> Response:
        return await self._page(request, "gm", live=False)

    async def game_master_live(self, request: Request) -> Response:
        return await self._page(request, "gm", live=True)

    async def responder(self, request: Request) -> Response:
        return await self._page(request, "respond", live=False)

    async def responder_live(self, request: Request) -> Response:
        return await self._page(request, "respond", live=True)

    async def status_page(self, request: Request) -> Response:
        caller = await self.caller(request)
        events = await run_in_threadpool(self.service.events, request.path_params["drill_id"], caller)
        return HTMLResponse(render("status.html.j2", v=views.status_page_view(events)))

    async def report(self, request: Request) -> Response:
        caller = await self.caller(request)
        drill_id = request.path_params["drill_id"]
        events = await run_in_threadpool(self.service.events, drill_id, caller)
        if not views.is_over(events):
            return HTMLResponse(
                render(
                    "base.html.j2",
                    person=self._person(caller),
                    flash="The report is written when the drill ends; it is still running.",
                    flash_kind="error",
                ),
                status_code=409,
            )
        from drills.engine.scoring import score

        html = await run_in_threadpool(lambda: render_html(score(events, self.policy), events))
        return HTMLResponse(html)

    # ---- actions ------------------------------------------------------------------------------------

    async def act(self, request: Request) -> Response:
        caller = await self.caller(request)
        drill_id = request.path_params["drill_id"]
        name = request.path_params["action"]
        action = ACTION_NAMES.get(name, name)
        form = await read_body(request, caller)  # 403 without the person's CSRF token
        back = f"{PREFIX}/drills/{quote(drill_id)}/{'gm' if action in GM_ACTIONS else 'respond'}"
        body = self._body(action, form)
        try:
            result = await run_in_threadpool(self.service.act, drill_id, caller, action, body)
        except ServerError as e:
            if e.status in (401, 403, 404, 429):
                raise
            return RedirectResponse(_with_error(back, e), 303)
        except DrillError as e:  # the drill refused (already ended, not paused, ...): said on the page
            return RedirectResponse(_with_error(back, e), 303)
        if action == "comms":
            event = result.get("event") or {}
            missing = [str(m) for m in event.get("missing_fields") or []]
            params = {"done": "comms", "open": body["template"]}
            if missing:
                params["missing"] = ", ".join(missing)[:500]
            return RedirectResponse(f"{back}?{urlencode(params)}#comms-{body['template']}", 303)
        return RedirectResponse(_with_flash(back, action), 303)

    def _body(self, action: str, form: dict[str, Any]) -> dict[str, Any]:
        """A form post as the service's request body (the same one the JSON API takes)."""
        if action == "comms":
            try:
                template = comms.get_template(_text(form, "template")).id
            except DrillError as e:
                raise ServerError(e.message, hint=e.hint, status=422) from e
            values = {k[len(FIELD_PREFIX) :]: _text(form, k) for k in form if k.startswith(FIELD_PREFIX)}
            text = views.filled_comms(template, values)
            return {"template": template, "text": text}
        if action == "ack":
            return {"via": "console"}
        keys = {
            "declare": ("severity",),
            "role": ("role", "person"),
            "escalate": ("whom",),
            "mitigated": ("summary",),
            "note": ("text",),
            "resolve": ("root_cause",),
            "pause": ("reason",),
            "abort": ("reason",),
        }.get(action, ())
        return {k: _text(form, k) for k in keys if k in form}

    def _to_login(self, request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': request.url.path})}", 303)


def _shipped_scenarios() -> list[str]:
    try:
        return sorted(p.stem for p in paths.scenarios_dir().glob("*.yaml"))
    except OSError:
        return []


def _text(form: FormData | dict[str, Any], key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


def _safe_next(path: str) -> str:
    """Only a path of this console (no scheme, no host, no ``//``): never an open redirect."""
    if path.startswith(PREFIX + "/") and not path.startswith("//") and "\\" not in path:
        return path
    return PREFIX + "/"


def _with_flash(url: str, code: str) -> str:
    return f"{url}?{urlencode({'done': code})}"


def _with_error(url: str, e: DrillError) -> str:
    # The message is the service's own words (a refusal naming a field), shown escaped on the page.
    text = e.message + (f" ({e.hint})" if e.hint else "")
    return f"{url}?{urlencode({'error': text[:500]})}"


def _flash(request: Request) -> dict[str, str]:
    q = request.query_params
    if q.get("error"):
        return {"flash": q["error"], "flash_kind": "error"}
    code = q.get("done", "")
    if code in DONE:
        text = DONE[code]
        missing = q.get("missing", "")
        if code == "comms" and missing:
            text += f" Still missing or not filled in (journaled as such): {missing}."
            return {"flash": text, "flash_kind": "error"}
        return {"flash": text, "flash_kind": ""}
    return {}


def _errors(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """A refusal (401, 403, 404, 422, 429) as a console page saying why, not a traceback."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except DrillError as e:
            status = error_response(e).status_code
            text = e.message + (f" ({e.hint})" if e.hint else "")
            return HTMLResponse(render("base.html.j2", flash=text, flash_kind="error"), status_code=status)

    return wrapped


def console_routes(
    service: DrillService,
    *,
    policy: Policy | None = None,
    stream_url: Callable[[str], str] | None = None,
) -> list[BaseRoute]:
    """The console, to mount at the server's root (its paths start with ``/console``)."""
    if policy is None and service.start_defaults.policy:
        # The SLA policy the served drills run under is the one their live budgets and reports use.
        policy = load_policy(Path(service.start_defaults.policy))
    c = Console(service, policy=policy, stream_url=stream_url)
    drill = PREFIX + "/drills/{drill_id}"
    static = StaticFiles(directory=str(files("drills.server.console") / "static"))
    routes: list[BaseRoute] = [
        Route(PREFIX, lambda r: RedirectResponse(PREFIX + "/", 307)),
        Route(PREFIX + "/", _errors(c.index)),
        Route(PREFIX + "/login", _errors(c.login_form), methods=["GET"]),
        Route(PREFIX + "/login", _errors(c.login), methods=["POST"]),
        Route(PREFIX + "/start", _errors(c.start), methods=["POST"]),
        Route(PREFIX + "/logout", _errors(c.logout), methods=["POST"]),
        Route(drill, _errors(c.drill_home)),
        Route(drill + "/gm", _errors(c.game_master)),
        Route(drill + "/gm/live", _errors(c.game_master_live)),
        Route(drill + "/respond", _errors(c.responder)),
        Route(drill + "/respond/live", _errors(c.responder_live)),
        Route(drill + "/status", _errors(c.status_page)),
        Route(drill + "/report", _errors(c.report)),
        Route(drill + "/do/{action}", _errors(c.act), methods=["POST"]),
        Mount(PREFIX + "/static", app=static, name="console-static"),
    ]
    return routes


__all__ = ["Console", "console_routes"]
