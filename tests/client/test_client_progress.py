"""The CLI's progress bars: a bar that moves back (bytes given up) shows no negative rate."""

from rich.progress import Progress

from client.cli import _Speed


def test_a_bar_moving_back_shows_no_rate() -> None:
    progress = Progress()
    task = progress.add_task("big.bin", total=100)
    progress.advance(task, 40)
    progress.advance(task, -40)  # Ctrl-C before the part was stored: its bytes are given back
    assert progress.tasks[0].speed is not None and progress.tasks[0].speed < 0
    assert _Speed().render(progress.tasks[0]).plain == "?"


def test_a_bar_moving_forward_shows_its_rate() -> None:
    progress = Progress()
    task = progress.add_task("big.bin", total=10 * 1024 * 1024)
    progress.advance(task, 1024 * 1024)
    progress.advance(task, 1024 * 1024)
    assert _Speed().render(progress.tasks[0]).plain.endswith("/s")
