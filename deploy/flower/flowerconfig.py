"""Flower configuration for Sidecar (`celery -A workers flower --conf=THIS_FILE`).

Flower executes this file (tornado `parse_config_file`) after reading its `FLOWER_*` environment
variables and command line, so the checks below see the final credentials.

Why it exists (Flower 2.x, read from flower/views/__init__.py, views/monitor.py and urls.py):
- `--basic-auth` (or the `FLOWER_BASIC_AUTH` environment variable, comma-separated `user:pass`
  pairs) is enforced only by handlers decorated with `@web.authenticated` (the UI pages and
  `/api/*`). `/metrics` and `/healthcheck` (`flower.views.monitor`) never look at the current
  user, so they answer anyone. Below they are given the same check.
- With no credentials at all Flower serves its UI, which can revoke tasks and shut workers down,
  to anyone who reaches the port. Flower here refuses to start instead.
- `--auth_provider` only selects an OAuth login handler (with `--auth`); it does not cover
  `/metrics` or `/healthcheck` either.

Every top-level name here whose name matches a Flower option would set that option: the helpers
are private (underscore) names, which match none.
"""

import tornado.web
from flower.views import monitor
from tornado.options import options as _flower_options

_PLACEHOLDER = "change-me"


def _credentials_problem() -> str | None:
    pairs = [pair for pair in (_flower_options.basic_auth or []) if pair]
    if not pairs and not _flower_options.auth:
        return "set FLOWER_BASIC_AUTH=user:password (or --basic-auth); Flower will not run open"
    for pair in pairs:
        user, sep, password = pair.partition(":")
        if not (user and sep and password):
            return "FLOWER_BASIC_AUTH must be user:password pairs separated by commas"
        if _PLACEHOLDER in password.lower():
            return "FLOWER_BASIC_AUTH still holds the template's placeholder password"
    return None


def _require_user(handler: tornado.web.RequestHandler) -> None:
    # BaseHandler.get_current_user raises 401 (with WWW-Authenticate) on missing or wrong basic
    # credentials and returns None when an OAuth session is missing.
    if not handler.current_user:
        raise tornado.web.HTTPError(401)


_problem = _credentials_problem()
if _problem:
    raise SystemExit(f"flower: {_problem}")

monitor.Metrics.prepare = _require_user
monitor.Healthcheck.prepare = _require_user
