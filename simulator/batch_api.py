"""HTTP routes of the Message Batches API over `BatchStore`.

Shapes follow the SDK's `MessageBatch`, `DeletedMessageBatch` and page types so that
`client.messages.batches.*` (including `results()`, which follows `results_url`) works unchanged.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from simulator.batches import Batch, batch_view
from simulator.endpoint import read_json
from simulator.state import SimState
from simulator.wire import ApiError, invalid, json_response


class BatchesApi:
    def __init__(self, state: SimState) -> None:
        self.state = state
        self.store = state.batches

    async def create(self, request: Request, request_id: str) -> Response:
        body = await read_json(request)
        batch = self.store.create(body, self.state.config.batch_seconds_per_request)
        return json_response(batch_view(batch, str(request.base_url)))

    async def retrieve(self, request: Request, request_id: str) -> Response:
        return json_response(batch_view(self.find(request), str(request.base_url)))

    async def cancel(self, request: Request, request_id: str) -> Response:
        batch = self.store.cancel(self.find(request))
        return json_response(batch_view(batch, str(request.base_url)))

    async def delete(self, request: Request, request_id: str) -> Response:
        batch = self.find(request)
        self.store.delete(batch)
        return json_response({"id": batch.id, "type": "message_batch_deleted"})

    async def results(self, request: Request, request_id: str) -> Response:
        batch = self.find(request)
        if batch.results is None:
            raise invalid(f"Batch {batch.id} has not ended yet; results are not available")
        return Response(batch.results_body, 200, media_type="application/binary")

    async def list(self, request: Request, request_id: str) -> Response:
        limit = _limit(request.query_params.get("limit"))
        after_id = request.query_params.get("after_id")
        before_id = request.query_params.get("before_id")
        ordered = self.store.newest_first()
        if after_id is not None:
            at = _position(ordered, after_id)
            ordered = [] if at is None else ordered[at + 1 :]
        if before_id is not None:
            at = _position(ordered, before_id)
            ordered = [] if at is None else ordered[:at]
        has_more = len(ordered) > limit
        page = ordered[-limit:] if before_id is not None else ordered[:limit]
        base = str(request.base_url)
        return json_response(
            {
                "data": [batch_view(b, base) for b in page],
                "has_more": has_more,
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
            }
        )

    def find(self, request: Request) -> Batch:
        batch_id = request.path_params["batch_id"]
        batch = self.store.get(batch_id)
        if batch is None:
            raise ApiError(404, f"Message batch {batch_id} not found", "not_found_error")
        return batch


def _position(batches: list[Batch], batch_id: str) -> int | None:
    """Index of the cursor batch; None (an empty page) for an unknown cursor."""
    for index, batch in enumerate(batches):
        if batch.id == batch_id:
            return index
    return None


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    try:
        value = int(raw)
    except ValueError:
        raise invalid("limit: Input should be a valid integer") from None
    if not 1 <= value <= 1000:
        raise invalid("limit: Input should be between 1 and 1000")
    return value
