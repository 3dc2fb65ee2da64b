"""Upload links for anyone holding one (§15): an intent into the link's folder, and the
follow-ups of the owner's upload routes (complete; a multipart upload's parts and abort), each
reaching only the uploads made through that same link. JSON in and out; a password link needs
its unlock cookie first, as its downloads do. The rules live in ``domain.shares.uploads``.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse

from api.body import JsonBody
from api.deps import DatabaseDep, QueueDep, SettingsDep, StorageDep
from api.shares.public import PREFIX
from api.uploads.router import CompleteBody, PartsBody, closed_answer
from domain.errors import (
    InvalidPath,
    MalformedJson,
    NotMultipart,
    PartsMissing,
    PathTaken,
    PayloadTooLarge,
    QuotaExceeded,
    ShareLocked,
    ShareNotFound,
    ShareUploadsThrottled,
    TooManyUploads,
    UploadClosed,
    UploadNotFound,
    ValidationFailed,
    responses,
)
from domain.models import Upload
from domain.shares import service, tokens
from domain.shares import uploads as link_uploads
from domain.shares.repository import Target
from domain.shares.schemas import LinkUploadIn, LinkUploadOut, LinkUploadState
from domain.uploads import multipart
from domain.uploads.schemas import SignedParts, StoredParts

router = APIRouter(prefix=PREFIX, tags=["share links"])

_EXAMPLES = {
    "single PUT": {
        "summary": "A file: one presigned PUT",
        "value": {"name": "cv.pdf", "size": 2016},
    },
    "multipart": {
        "summary": "A large file: presigned parts",
        "value": {"name": "video.mp4", "size": 1073741824, "multipart": True},
    },
}
LinkUploadBody = Annotated[LinkUploadIn, Depends(JsonBody(LinkUploadIn, examples=_EXAMPLES))]


async def unlocked_link(
    request: Request, token: str, database: DatabaseDep, settings: SettingsDep
) -> Target:
    """The live link ``token`` names, unlocked (its cookie) when it has a password."""
    target = await service.open_share(database, token)
    service.require_unlocked(target, request.cookies.get(tokens.COOKIE), settings)
    return target


LinkDep = Annotated[Target, Depends(unlocked_link)]


async def links_upload(upload_id: uuid.UUID, target: LinkDep, database: DatabaseDep) -> Upload:
    return await link_uploads.link_upload(database, target, upload_id)


LinksUpload = Annotated[Upload, Depends(links_upload)]
_LINK_ERRORS = (ShareNotFound, ShareLocked, UploadNotFound)


@router.post(
    "/{token}/upload",
    status_code=status.HTTP_201_CREATED,
    responses=responses(
        ShareNotFound,
        ShareLocked,
        InvalidPath,
        PathTaken,
        PayloadTooLarge,
        QuotaExceeded,
        TooManyUploads,
        ShareUploadsThrottled,
        MalformedJson,
        ValidationFailed,
    ),
)
async def upload(
    request: Request,
    target: LinkDep,
    body: LinkUploadBody,
    database: DatabaseDep,
    storage: StorageDep,
    settings: SettingsDep,
    redis: QueueDep,
) -> LinkUploadOut:
    """Add a file to an upload link's folder: the owner's JSON intent with ``name`` (a file
    name, or a path relative to the folder) for ``path``, answered with the usual ticket (a
    presigned PUT and POST, or a presigned multipart upload). A name already taken gets a
    number (``report (1).pdf``): nothing is ever overwritten. Counted against the owner's quota;
    at most ``FILESTORE_SHARE_UPLOADS_PER_MINUTE`` intents a minute per link."""
    address = request.client.host if request.client else "unknown"
    limit = link_uploads.rate_limit(redis, settings)
    return await link_uploads.issue(database, storage, settings, limit, target, body, address)


@router.post(
    "/{token}/uploads/{upload_id}/complete",
    response_model=LinkUploadState,
    responses={
        202: {"model": LinkUploadState, "description": "The object has not arrived yet."},
        **responses(
            *_LINK_ERRORS,
            UploadClosed,
            PartsMissing,
            MalformedJson,
            PayloadTooLarge,
            ValidationFailed,
        ),
    },
)
async def complete_upload(
    target: LinkDep,
    upload: LinksUpload,
    body: CompleteBody,
    database: DatabaseDep,
    storage: StorageDep,
    settings: SettingsDep,
    response: Response,
) -> LinkUploadState | JSONResponse:
    """Confirm an upload made through this link, as ``POST /files/uploads/{id}/complete``
    does: 200 once confirmed, 202 while the object has not arrived, 409 when it was rejected,
    has expired or was aborted. A multipart upload takes the same optional part list."""
    parts = body.parts if body is not None else None
    state, shown = await link_uploads.complete(database, storage, settings, target, upload, parts)
    return closed_answer(state, response) or shown


@router.post(
    "/{token}/uploads/{upload_id}/parts",
    responses=responses(
        *_LINK_ERRORS, UploadClosed, NotMultipart, MalformedJson, PayloadTooLarge, ValidationFailed
    ),
)
async def sign_parts(
    upload: LinksUpload, body: PartsBody, storage: StorageDep, settings: SettingsDep
) -> SignedParts:
    """Presigned UploadPart URLs of a multipart upload made through this link, as ``POST
    /files/uploads/{id}/parts`` signs them."""
    return multipart.sign_parts(storage, settings, upload, body.parts)


@router.get(
    "/{token}/uploads/{upload_id}/parts",
    responses=responses(*_LINK_ERRORS, UploadClosed, NotMultipart),
)
async def list_parts(upload: LinksUpload, storage: StorageDep) -> StoredParts:
    """The parts storage holds of a multipart upload made through this link (resuming)."""
    return await multipart.list_parts(storage, upload)


@router.delete(
    "/{token}/uploads/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(*_LINK_ERRORS, UploadClosed),
)
async def abort_upload(
    target: LinkDep, upload: LinksUpload, database: DatabaseDep, storage: StorageDep
) -> Response:
    """Abort a pending upload made through this link (single PUT or multipart)."""
    await link_uploads.abort(database, storage, target, upload)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
