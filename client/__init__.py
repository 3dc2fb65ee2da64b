"""A typed client of the filestore API (httpx): sign in, list, upload, download, delete."""
