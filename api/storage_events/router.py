import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status

from api.body import read_json_value
from api.deps import QueueDep, SettingsDep
from domain.errors import MalformedBody, MalformedJson, QueueUnavailable, Unauthorized, responses
from domain.storage_events import service

router = APIRouter(prefix="/storage", tags=["storage"])


@router.post(
    "/events",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, MalformedBody, MalformedJson, QueueUnavailable),
)
async def storage_events(
    request: Request,
    settings: SettingsDep,
    queue: QueueDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Bucket notification webhook (MinIO/AWS S3 event records, SeaweedFS filer events).

    Authenticated by ``Authorization: Bearer <FILESTORE_WEBHOOK_TOKEN>``, not a user token.
    """
    expected = f"Bearer {settings.auth.webhook_token.get_secret_value()}".encode()
    if not hmac.compare_digest((authorization or "").encode(), expected):
        raise Unauthorized("Missing or wrong webhook token.")
    body = await read_json_value(request, settings.requests.max_request_body_bytes)
    await service.accept(queue, settings, body)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
