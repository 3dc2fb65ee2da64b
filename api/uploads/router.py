"""Every upload route under ``/files``: the intent (JSON: a presigned single PUT/POST or
multipart) or the proxied form-data upload, an upload's state, ``complete``, the presigned
multipart parts, Uppy's signer and abort. The protocols themselves live in ``domain.uploads``.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse

from api.body import JsonBody, body_stream
from api.deps import (
    CurrentUser,
    CurrentUserId,
    DatabaseDep,
    SettingsDep,
    StorageDep,
    UploadSlotsDep,
)
from api.error_handlers import error_response
from domain.errors import (
    EmptyFile,
    InvalidPath,
    LengthRequired,
    MalformedBody,
    MalformedJson,
    MissingPart,
    NotMultipart,
    PartsMissing,
    PathTaken,
    PayloadTooLarge,
    QuotaExceeded,
    ServerBusy,
    TooManyUploads,
    Unauthorized,
    UploadClosed,
    UploadIdMismatch,
    UploadNotFound,
    ValidationFailed,
    responses,
)
from domain.files.repository import FileRepository
from domain.files.schemas import FileOut, StoredFile
from domain.models import Upload, UploadStatus
from domain.uploads import multipart, proxied, single, uppy
from domain.uploads.form_data import boundary_of, read_multipart
from domain.uploads.schemas import (
    CompleteIn,
    PartsIn,
    PendingFile,
    SignedParts,
    StoredParts,
    UploadIntentIn,
    UploadState,
)

router = APIRouter(prefix="/files", tags=["files"])

MULTIPART_OVERHEAD_BYTES = 64 * 1024

_FORM_UPLOAD: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "path": {"type": "string", "description": "Before the file part."},
        "file": {"type": "string", "format": "binary"},
    },
}
_INTENT_EXAMPLES: dict[str, Any] = {
    "single PUT": {
        "summary": "A small file: one presigned PUT",
        "value": {"path": "/docs/", "name": "report.pdf", "size": 2016},
    },
    "multipart": {
        "summary": "A large file: presigned parts",
        "value": {"path": "/big/disk.img", "size": 1073741824, "multipart": True},
    },
}
IntentBody = Annotated[
    UploadIntentIn | None,
    Depends(
        JsonBody(
            UploadIntentIn,
            examples=_INTENT_EXAMPLES,
            others={"multipart/form-data": _FORM_UPLOAD},
        )
    ),
]
CompleteBody = Annotated[CompleteIn | None, Depends(JsonBody(CompleteIn, optional=True))]
SignBody = Annotated[uppy.SignRequestIn, Depends(JsonBody(uppy.SignRequestIn))]
PartsBody = Annotated[PartsIn, Depends(JsonBody(PartsIn))]


async def callers_upload(
    upload_id: uuid.UUID, owner_id: CurrentUserId, database: DatabaseDep
) -> Upload:
    """The caller's upload named by the path, read once: anyone else's is 404 like a missing
    one. A snapshot: what changes it locks the rows and reads them again."""
    async with database.reading() as session:
        upload = await FileRepository(session, owner_id).get_upload(upload_id)
    if upload is None:
        raise UploadNotFound()
    return upload


CallersUpload = Annotated[Upload, Depends(callers_upload)]


@router.post(
    "/upload",
    status_code=status.HTTP_201_CREATED,
    response_model=PendingFile | StoredFile,
    responses={
        200: {"model": StoredFile, "description": "A form upload overwrote a file (its id kept)."},
        **responses(
            Unauthorized,
            InvalidPath,
            MissingPart,
            EmptyFile,
            MalformedBody,
            LengthRequired,
            PayloadTooLarge,
            QuotaExceeded,
            TooManyUploads,
            PathTaken,
            UploadClosed,
            ValidationFailed,
            TooManyUploads,
            ServerBusy,
        ),
    },
)
async def upload(
    request: Request,
    response: Response,
    owner_id: CurrentUserId,
    intent: IntentBody,
    database: DatabaseDep,
    settings: SettingsDep,
    storage: StorageDep,
    slots: UploadSlotsDep,
    path: Annotated[str | None, Query(description="Target path, if not a form field.")] = None,
) -> PendingFile | StoredFile:
    """Upload a file.

    With a JSON body ``{path, name?, size?, content_type?, sha256?}``: a pending file and a
    presigned PUT (and a browser POST); storage's notification confirms it. With
    ``multipart/form-data``: the ``file`` part is streamed to storage through the API.
    A path ending in ``/`` is a folder and the file keeps its own name; an existing path is
    overwritten and keeps its id. A form upload answers 201 for a new file, 200 for an
    overwrite; an intent is always 201 (it creates an upload).
    """
    if intent is not None:
        issue = multipart.issue_multipart if multipart.wants_multipart(intent, settings) else None
        issue = issue or single.issue_upload
        return await database.transaction(
            lambda session: issue(session, storage, settings, owner_id, intent)
        )
    content_type = request.headers.get("content-type", "")
    boundary = boundary_of(content_type)
    if boundary is None:
        if content_type.startswith("application/x-www-form-urlencoded"):
            raise MissingPart("A urlencoded form has no file: send multipart/form-data.")
        raise MalformedBody("Send JSON (a direct upload) or multipart/form-data with 'file'.")
    declared = request.headers.get("content-length")
    if declared is None and "chunked" not in request.headers.get("transfer-encoding", ""):
        raise LengthRequired()
    too_long = settings.uploads.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
    if declared is not None and declared.isdigit() and int(declared) > too_long:
        raise PayloadTooLarge()
    ctx = proxied.UploadContext(database, storage, settings)
    async with slots.hold(owner_id):
        events = read_multipart(body_stream(request), boundary)
        length = int(declared) if declared is not None and declared.isdigit() else None
        stored = await proxied.upload_proxied(ctx, owner_id, events, path, length)
    if not stored.created:
        response.status_code = status.HTTP_200_OK
    return StoredFile(**FileOut.of(stored.file).model_dump())


@router.get("/uploads/{upload_id}", responses=responses(Unauthorized, UploadNotFound))
async def upload_state(
    upload: CallersUpload, database: DatabaseDep, settings: SettingsDep
) -> UploadState:
    """An upload's state (pending, completed, rejected with a reason, expired, failed, aborted)
    and its file."""
    async with database.reading() as session:
        return await single.upload_state(session, settings, upload)


def closed_answer(state: UploadState, response: Response) -> JSONResponse | None:
    """What ``complete`` answers instead of the state: 409 for an upload that closed without
    content (its rejection committed); ``None`` otherwise, a pending one made a 202."""
    if state.status in {UploadStatus.rejected, UploadStatus.expired, UploadStatus.aborted}:
        detail = f"The upload is {state.status}: {state.reason or 'no reason given'}."
        return error_response(UploadClosed(detail))
    if state.status == UploadStatus.pending:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Retry-After"] = "1"
    return None


@router.post(
    "/uploads/{upload_id}/complete",
    response_model=UploadState,
    responses={
        202: {"model": UploadState, "description": "The object has not arrived yet."},
        **responses(
            Unauthorized,
            UploadNotFound,
            UploadClosed,
            PartsMissing,
            MalformedJson,
            PayloadTooLarge,
            ValidationFailed,
        ),
    },
)
async def complete_upload(
    upload: CallersUpload,
    body: CompleteBody,
    database: DatabaseDep,
    storage: StorageDep,
    settings: SettingsDep,
    response: Response,
) -> UploadState | JSONResponse:
    """Confirm a direct upload now: 200 once confirmed, 202 while the object has not arrived,
    409 when it was rejected (the reason says why), has expired or was aborted.

    A multipart upload is assembled first (CompleteMultipartUpload) from the optional body
    ``{"parts": [{"number", "etag"}]}`` or, without it, from the parts storage holds, which
    must be 1..part_count: 409 ``parts_missing`` names the gaps."""
    parts = body.parts if body is not None else None
    state = await database.transaction(
        lambda session: multipart.complete_multipart(session, storage, settings, upload, parts)
    )
    return closed_answer(state, response) or state


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
)
async def sign_request(
    asked: SignBody,
    user: CurrentUser,
    database: DatabaseDep,
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
    return await database.transaction(
        lambda session: uppy.sign_request(session, storage, settings, user, asked)
    )


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
)
async def sign_parts(
    upload: CallersUpload,
    body: PartsBody,
    storage: StorageDep,
    settings: SettingsDep,
) -> SignedParts:
    """Presigned UploadPart URLs for up to 1,000 parts of a pending multipart upload.

    Each URL pins the part's exact length (every part but the last is ``part_size`` bytes) and,
    when the part's ``sha256`` is given, its checksum (``x-amz-checksum-sha256``): storage
    refuses other bytes. Send the returned ``headers`` with the part; keep each answer's
    ``ETag``, or ask ``GET .../parts`` later.
    """
    return multipart.sign_parts(storage, settings, upload, body.parts)


@router.get(
    "/uploads/{upload_id}/parts",
    responses=responses(Unauthorized, UploadNotFound, UploadClosed, NotMultipart),
)
async def list_parts(upload: CallersUpload, storage: StorageDep) -> StoredParts:
    """The parts storage holds for a pending multipart upload (number, size, etag), every
    ListParts page: a client that lost its state resumes from here."""
    return await multipart.list_parts(storage, upload)


@router.delete(
    "/uploads/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, UploadNotFound, UploadClosed),
)
async def abort_upload(
    upload: CallersUpload, database: DatabaseDep, storage: StorageDep
) -> Response:
    """Abort a pending direct upload (single PUT or multipart): storage's multipart upload is
    aborted, an object that arrived is deleted, the upload becomes ``aborted``. 409 once it
    was completed, rejected or expired; aborting twice is a no-op."""
    await database.transaction(lambda session: multipart.abort_upload(session, storage, upload))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
