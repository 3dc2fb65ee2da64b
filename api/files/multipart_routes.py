"""Routes of presigned multipart uploads (signing parts, listing them) and of aborting an upload.

Included by ``api.files.router`` (prefix ``/files``); ``complete`` lives there, beside the single
PUT's, and reads its optional part list with ``read_complete_body``.
"""

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response, status

from api.body import parse_json, validate
from api.config import Settings
from api.deps import CurrentUser, SessionDep, SettingsDep, StorageDep
from api.errors import (
    InvalidPath,
    MalformedJson,
    NotMultipart,
    PathTaken,
    PayloadTooLarge,
    QuotaExceeded,
    TooManyUploads,
    Unauthorized,
    UploadClosed,
    UploadIdMismatch,
    UploadNotFound,
    ValidationFailed,
    responses,
)
from api.files import multipart_uploads, uppy
from api.files.schemas import CompletedPartIn, CompleteIn, PartsIn, SignedParts, StoredParts

router = APIRouter()

COMPLETE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": CompleteIn.model_json_schema()}},
    }
}
_SIGN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": uppy.SignRequestIn.model_json_schema()}},
    }
}
_PARTS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PartsIn.model_json_schema()}},
    }
}


async def _read_body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is over {limit} bytes.")
    return bytes(body)


async def read_complete_body(request: Request, settings: Settings) -> list[CompletedPartIn] | None:
    """The optional ``{"parts": [...]}`` of ``complete``; an empty body is no list."""
    body = await _read_body(request, settings.max_request_body_bytes)
    if not body.strip():
        return None
    return validate(CompleteIn, parse_json(body, settings.max_json_depth)).parts


@router.post(
    "/uploads/sign",
    response_model=uppy.SignedRequestOut,
    response_model_exclude_none=True,
    responses=responses(
        Unauthorized,
        InvalidPath,
        UploadNotFound,
        UploadIdMismatch,
        QuotaExceeded,
        TooManyUploads,
        PathTaken,
        UploadClosed,
        MalformedJson,
        PayloadTooLarge,
        ValidationFailed,
    ),
    openapi_extra=_SIGN_BODY,
)
async def sign_request(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> uppy.SignedRequestOut:
    """Uppy 6's ``signRequest``: sign one S3 request of the caller's own direct upload.

    Body: Uppy's request ``{method, key, uploadId?, partNumber?, contentType?}``. PutObject
    (``PUT``) and CreateMultipartUpload (``POST``) without ``uploadId`` open a pending upload
    at the path ``key`` and answer our object ``key`` (PutObject as a POST policy in
    ``fields``); UploadPart, ListParts, CompleteMultipartUpload and AbortMultipartUpload (with
    ``uploadId``) are signed for the caller's pending upload with that key only, 404 for
    anything else. The first ``uploadId`` is recorded; another one is 409. Never rate-limited.
    """
    body = await _read_body(request, settings.max_request_body_bytes)
    asked = validate(uppy.SignRequestIn, parse_json(body, settings.max_json_depth))
    return await uppy.sign_request(session, storage, settings, user, asked)


@router.post(
    "/uploads/{upload_id}/parts",
    responses=responses(
        Unauthorized,
        UploadNotFound,
        UploadClosed,
        NotMultipart,
        MalformedJson,
        PayloadTooLarge,
        ValidationFailed,
    ),
    openapi_extra=_PARTS_BODY,
)
async def sign_parts(
    request: Request,
    upload_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> SignedParts:
    """Presigned UploadPart URLs for up to 1,000 parts of a pending multipart upload.

    Each URL pins the part's exact length (every part but the last is ``part_size`` bytes) and,
    when the part's ``sha256`` is given, its checksum (``x-amz-checksum-sha256``): storage
    refuses other bytes. Send the returned ``headers`` with the part; keep each answer's
    ``ETag``, or ask ``GET .../parts`` later.
    """
    body = await _read_body(request, settings.max_request_body_bytes)
    parts = validate(PartsIn, parse_json(body, settings.max_json_depth)).parts
    return await multipart_uploads.sign_parts(session, storage, settings, user, upload_id, parts)


@router.get(
    "/uploads/{upload_id}/parts",
    responses=responses(Unauthorized, UploadNotFound, UploadClosed, NotMultipart),
)
async def list_parts(
    upload_id: uuid.UUID, user: CurrentUser, session: SessionDep, storage: StorageDep
) -> StoredParts:
    """The parts storage holds for a pending multipart upload (number, size, etag), every
    ListParts page: a client that lost its state resumes from here."""
    return await multipart_uploads.list_parts(session, storage, user, upload_id)


@router.delete(
    "/uploads/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, UploadNotFound, UploadClosed),
)
async def abort_upload(
    upload_id: uuid.UUID, user: CurrentUser, session: SessionDep, storage: StorageDep
) -> Response:
    """Abort a pending direct upload (single PUT or multipart): storage's multipart upload is
    aborted, an object that arrived is deleted, the upload becomes ``aborted``. 409 once it
    was completed, rejected or expired; aborting twice is a no-op."""
    await multipart_uploads.abort_upload(session, storage, user, upload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
