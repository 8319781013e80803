"""`/_sim/*`: the control plane tests and benchmarks use to steer and observe the simulator.

No API key is needed here: these endpoints exist only for the harness, never for the client
under test, and a test should be able to reset or inspect the simulator whatever it configured.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from simulator.endpoint import read_json
from simulator.faults import parse_fault
from simulator.state import SimState
from simulator.wire import invalid, json_response


class ControlApi:
    def __init__(self, state: SimState) -> None:
        self.state = state

    async def health(self, request: Request, request_id: str) -> Response:
        return json_response({"status": "ok"})

    async def stats(self, request: Request, request_id: str) -> Response:
        return json_response(self.state.stats_snapshot())

    async def reset(self, request: Request, request_id: str) -> Response:
        """Body optional; `{"config": true}` also restores the startup config."""
        raw = await request.body()
        body = await read_json(request) if raw.strip() else {}
        restore = isinstance(body, dict) and body.get("config") is True
        self.state.reset(restore_config=restore)
        return json_response({"status": "reset", "config": self.state.config.public()})

    async def get_config(self, request: Request, request_id: str) -> Response:
        return json_response(self.state.config.public())

    async def patch_config(self, request: Request, request_id: str) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise invalid("config patch must be a JSON object")
        try:
            config = self.state.update_config(body)
        except ValueError as exc:
            raise invalid(str(exc)) from None
        return json_response(config.public())

    async def add_fault(self, request: Request, request_id: str) -> Response:
        try:
            fault = parse_fault(await read_json(request))
        except ValueError as exc:
            raise invalid(str(exc)) from None
        self.state.faults.add(fault)
        return json_response({"faults": self.state.faults.snapshot()})

    async def get_faults(self, request: Request, request_id: str) -> Response:
        return json_response({"faults": self.state.faults.snapshot()})

    async def clear_faults(self, request: Request, request_id: str) -> Response:
        self.state.faults.queue.clear()
        return json_response({"faults": []})
