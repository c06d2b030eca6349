"""The error hierarchy.

Every error the package raises on purpose derives from :class:`LineageError`.  Messages name
the object at fault and the next step; structured fields let the API and CLI render them
without parsing text.  The HTTP layer maps ``status`` to the response code.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class LineageError(Exception):
    """Root of all deliberate errors. ``status`` is the HTTP code the API answers with."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(LineageError):
    status = 500


class StoreUnavailable(LineageError):
    """The PostgreSQL store cannot be reached. Callers that guard access (the gate) fail closed."""

    status = 503


@dataclass
class FieldProblem:
    """One reason an input was rejected: a JSON path such as ``$.run.runId`` and why."""

    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.path, "reason": self.reason}


class InvalidEvent(LineageError):
    """An OpenLineage event that breaks the spec. Nothing of it is stored."""

    status = 400

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"invalid OpenLineage event: {first.path}: {first.reason}{more}")


class NotFound(LineageError):
    status = 404

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"{kind} `{name}` not found")


class BadRequest(LineageError):
    status = 400

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class PayloadTooLarge(LineageError):
    status = 413


class Conflict(LineageError):
    status = 409


class Forbidden(LineageError):
    status = 403
