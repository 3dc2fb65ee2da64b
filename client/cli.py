"""The ``filestore`` command (typer + rich), built on ``client``."""

import typer

app = typer.Typer(help="filestore: your files on the command line.", no_args_is_help=True)


@app.callback()
def _root() -> None:
    """Sign in, list, upload, download and delete files on a filestore API."""


def main() -> None:
    app()
