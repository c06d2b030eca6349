"""The error hierarchy.

Every error the package raises on purpose derives from :class:`LineageError`.  Messages name
the object at fault and the next step; structured fields let the API and CLI render them
without parsing text.  The HTTP layer maps ``status`` to the response code.
"""

from __future__ import annotations

from dataclasses import dataclass


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


class StoreBusy(StoreUnavailable):
    """Concurrent writes kept conflicting (serialization failure, deadlock) after the retries."""


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


class StoreRefused(BadRequest):
    """The database refused a value of the request (a data, constraint or size limit)."""

    def __init__(self, reason: str, field: str = "$") -> None:
        super().__init__(field, reason)


class PayloadTooLarge(LineageError):
    status = 413
    field = "$"


class Conflict(LineageError):
    status = 409


class Forbidden(LineageError):
    status = 403


class ContractError(LineageError):
    """A contract document that cannot be registered: names the file, line and field at fault."""

    status = 400

    def __init__(self, file: str, line: int | None, field: str, reason: str) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.reason = reason
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {reason}; nothing was registered")

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "field": self.field, "reason": self.reason}


class ContractTooLarge(ContractError):
    """A contract document over ``LINEAGE_MAX_CONTRACT_BYTES``: refused before it is parsed."""

    status = 413


class SelfApprovalRefused(Forbidden):
    """Separation of duties: a contract's requester, or an owner of a job that consumes its
    data, may not approve it."""

    def __init__(self, contract: str, user: str, role: str) -> None:
        self.contract = contract
        self.user = user
        self.role = role
        super().__init__(
            f"`{user}` may not approve contract `{contract}`: they are {role}; "
            "approval needs an independent steward (ask someone who neither requested the "
            "contract nor owns a job that consumes its data)"
        )
