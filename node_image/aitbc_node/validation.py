"""One wording for pydantic validation errors of small JSON specs (fault specs, behaviours)."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError


def describe(
    error: ValidationError, owner: str, model: type[BaseModel], prefix: str
) -> tuple[str, str]:
    """(message, field) for the first problem of ``error``: ``owner`` names what takes the
    parameters (a fault kind, a behaviour), ``prefix`` goes before field names."""
    detail = error.errors()[0]
    loc = ".".join(str(part) for part in detail["loc"])
    where = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "<body>"
    allowed = ", ".join(model.model_fields) or "none"
    if detail["type"] == "extra_forbidden":
        message = f"field {where[:60]}: {owner} takes no such parameter (it takes: {allowed})"
    elif detail["type"] == "missing":
        message = f"field {where}: required for {owner}"
    else:
        message = f"field {where}: {detail['msg']}"
        value = detail.get("input")
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            message += f" (got {repr(value)[:40]})"
    return message, where[:60]
