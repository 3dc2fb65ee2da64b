"""A typed client of the filestore API (httpx): sign in, list, upload, download, delete,
make folders, move, copy, search, bring back from the trash or an earlier version, and share.

from client import Client

with Client("http://127.0.0.1:8080") as api:
    api.sign_in("alice", "correct horse battery")
    api.upload("disk.img", "/backups/")        # straight to storage, multipart if large
    for file in api.iter_files("/backups/"):
        print(file.path, file.size)
    api.download("/backups/disk.img", "copy.img")
    api.move("/backups/", "/archive/")         # a folder (ends with "/"): /archive/backups/
"""

from client.api import DEFAULT_JOBS, DEFAULT_MULTIPART_THRESHOLD, Client, share_token
from client.errors import FilestoreError
from client.models import (
    Account,
    DownloadResult,
    File,
    Folder,
    FolderPage,
    FolderTransfer,
    NoProgress,
    Page,
    Progress,
    Restored,
    Share,
    StoredPart,
    TrashEntry,
    TrashPage,
    UploadResult,
    UploadState,
    Usage,
    Version,
)
from client.pacing import Paced, RateLimit, parse_rate
from client.state import PendingDownload, PendingUpload, StateFile

__all__ = [
    "DEFAULT_JOBS",
    "DEFAULT_MULTIPART_THRESHOLD",
    "Account",
    "Client",
    "DownloadResult",
    "File",
    "FilestoreError",
    "Folder",
    "FolderPage",
    "FolderTransfer",
    "NoProgress",
    "Paced",
    "Page",
    "PendingDownload",
    "PendingUpload",
    "Progress",
    "RateLimit",
    "Restored",
    "Share",
    "StateFile",
    "StoredPart",
    "TrashEntry",
    "TrashPage",
    "UploadResult",
    "UploadState",
    "Usage",
    "Version",
    "parse_rate",
    "share_token",
]
