"""The root router: Starlette's, with parameter-free paths found by one dict lookup.

Starlette tries every route's regex in order; with every dialect's routes on one root,
`GET /` (the smart-MAIC meter's getdata) was tried against 23 routes first, 14 % of its
time. For a path with no parameters the routes whose pattern matches it are known in
advance, in order, so the same first-full-match-else-first-partial rule runs over those
alone; any other path (or a mounted app's) takes Starlette's usual walk, as does a path
none of its candidates accepts after all.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import ASGIApp, Lifespan, Receive, Scope, Send


class IndexedRouter(Router):
    """A Router that dispatches parameter-free paths through a precomputed index."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._static = self._index()

    def _index(self) -> dict[str, list[BaseRoute]]:
        paths = {
            path
            for r in self.routes
            if isinstance(path := getattr(r, "path", None), str) and "{" not in path
        }
        index: dict[str, list[BaseRoute]] = {}
        for path in paths:
            # a route without a pattern (a host, say) might match anything: keep it
            index[path] = [
                r
                for r in self.routes
                if (rx := getattr(r, "path_regex", None)) is None or rx.match(path)
            ]
        return index

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        routes = None
        if scope["type"] in ("http", "websocket") and not scope.get("root_path"):
            routes = self._static.get(scope["path"])
        if routes is None:
            await super().app(scope, receive, send)
            return
        partial: tuple[BaseRoute, Scope] | None = None
        for route in routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial = (route, child_scope)
        if partial is None:  # nothing here after all: Starlette's walk decides
            await super().app(scope, receive, send)
            return
        route, child_scope = partial
        scope["route"] = route
        scope.update(child_scope)
        await route.handle(scope, receive, send)


class Root(Starlette):
    """The app's root: Starlette over an IndexedRouter, with ASGI endpoints at fixed paths
    called straight.

    Starlette runs every request through its middleware stack — ServerErrorMiddleware,
    the user middleware, ExceptionMiddleware — then the router's match and the route's
    method check. For an endpoint that is itself an ASGI app (a dialect's `Endpoint`,
    which renders its own errors) at a path without parameters, all of that but the
    first two is known in advance for each method: such a request goes to the route's
    app behind the same ServerErrorMiddleware and user middleware, with the scope the
    router would have given it. ExceptionMiddleware is left out: it renders the
    `HTTPException`s that Starlette's request/response wrapper lets through, and such
    an endpoint has no wrapper. Everything else takes the full stack.
    """

    def __init__(
        self, routes: list[BaseRoute], *, default: ASGIApp | None = None,
        lifespan: Lifespan[Any] | None = None, redirect_slashes: bool = True, **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.router = self._indexed = IndexedRouter(
            routes, default=default, lifespan=lifespan, redirect_slashes=redirect_slashes
        )
        self._direct: dict[tuple[str, str], tuple[Route, ASGIApp]] | None = None

    def _build_direct(self) -> dict[tuple[str, str], tuple[Route, ASGIApp]]:
        """(path, method) -> the route and its app behind the middleware, built at the
        first request as Starlette builds its stack (middleware may be added until then)."""
        direct: dict[tuple[str, str], tuple[Route, ASGIApp]] = {}
        for path, candidates in self._indexed._static.items():
            methods = {m for r in candidates if isinstance(r, Route) for m in r.methods or ()}
            for method in methods:
                probe = {"type": "http", "path": path, "method": method, "root_path": ""}
                route = next(r for r in candidates if r.matches(probe)[0] is Match.FULL)
                if isinstance(route, Route) and route.app is route.endpoint:
                    app = route.app
                    for cls, args, kwargs in reversed(self.user_middleware):
                        app = cls(app, *args, **kwargs)
                    errors = ServerErrorMiddleware(app, handler=self._on_500(), debug=self.debug)
                    direct[path, method] = (route, errors)
        self._direct = direct
        return direct

    def _on_500(self) -> Any:
        """The 500 handler Starlette's own stack is built with (None: its plain text)."""
        handlers = self.exception_handlers
        return handlers.get(500) or handlers.get(Exception)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            table = self._direct if self._direct is not None else self._build_direct()
            direct = table.get((scope["path"], scope["method"]))
            if direct is not None:
                route, app = direct
                scope["app"] = self
                scope["router"] = self.router
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = {}
                await app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
