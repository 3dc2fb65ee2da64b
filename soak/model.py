"""What the harness records: operations as the clients saw them, answers, faults."""

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["success", "failure", "uncertain"]
Target = Literal["api", "storage"]


class Clock:
    """Seconds since the run started (monotonic), the one time base of every record."""

    def __init__(self) -> None:
        self.origin = time.monotonic()

    def __call__(self) -> float:
        return round(time.monotonic() - self.origin, 3)


@dataclass(slots=True)
class Op:
    """One client operation. A write carries ``sha256`` once its bytes may have left."""

    kind: str
    client: int
    login: str
    path: str | None
    start: float
    end: float = 0.0
    outcome: Outcome = "uncertain"
    # Writes: the content's hex SHA-256, set when the bytes were (possibly) sent; None when
    # the client never sent them (an intent refused or unanswered), so they cannot surface.
    sha256: str | None = None
    size: int = 0
    is_write: bool = False
    is_delete: bool = False
    # A PUT to a confirmed upload's URL: the API may take the bytes or reject the file.
    may_remove: bool = False
    # A restore in place (from the trash, or of a version): the path's content may become any
    # content once written to it.
    revives: bool = False
    steps: list[str] = field(default_factory=list)
    # Direct uploads: the upload's id, and when storage answered the bytes' PUT or POST (POSIX
    # time, the clock the database's confirmation times are written with).
    upload_id: str | None = None
    sent_at: float | None = None

    def step(self, name: str, status: int | None) -> None:
        self.steps.append(f"{name}:{status if status is not None else 'no-answer'}")

    def brief(self) -> dict[str, Any]:
        return {
            key: value
            for key, value in asdict(self).items()
            if key not in {"is_write", "is_delete", "may_remove", "revives"}
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer with a 5xx status (the only ones the invariants look at)."""

    target: Target
    server: int | None
    route: str
    status: int
    start: float
    end: float
    body: str


@dataclass(slots=True)
class Fault:
    kind: str
    target: str
    start: float
    # When the dependency answered again (or the process was restarted); None while down.
    end: float | None = None

    @property
    def down_seconds(self) -> float:
        return round((self.end if self.end is not None else self.start) - self.start, 3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "at": self.start,
            "down_seconds": self.down_seconds,
        }


@dataclass(slots=True)
class ProcessExit:
    """A service process that exited without being told to (the harness restarted it)."""

    name: str
    at: float
    returncode: int | None


@dataclass(slots=True)
class Violation:
    invariant: str
    count: int
    examples: list[Any]

    @classmethod
    def of(cls, invariant: str, items: Iterable[Any], limit: int = 5) -> "Violation | None":
        found = list(items)
        return cls(invariant, len(found), found[:limit]) if found else None
