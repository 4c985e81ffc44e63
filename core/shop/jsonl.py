"""Reading JSON-lines data files into validated models, with errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class StoreDataError(Exception):
    """A store data file is missing, unreadable or holds a record that does not validate."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


def problems(error: ValidationError) -> str:
    """A validation error in one line: "price: Input should be greater than 0; title: ..."."""
    return "; ".join(
        f"{'.'.join(str(part) for part in issue['loc']) or 'record'}: {issue['msg']}"
        for issue in error.errors()
    )


def read_jsonl(path: Path, model: type[M]) -> list[M]:
    """Parse every non-blank line of `path` as one `model`; raise StoreDataError on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise StoreDataError(path, "file not found") from error
    except (OSError, UnicodeDecodeError) as error:
        raise StoreDataError(path, f"cannot read file: {error}") from error
    records: list[M] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as error:
            raise StoreDataError(path, f"invalid JSON: {error.msg}", number) from error
        try:
            records.append(model.model_validate(raw))
        except ValidationError as error:
            raise StoreDataError(
                path, f"invalid {model.__name__}: {problems(error)}", number
            ) from error
    return records


def read_unique(path: Path, model: type[M], what: str) -> list[M]:
    """`read_jsonl`, and a StoreDataError at the first record whose `id` repeats an earlier one
    (`what` names the records in the message: "product", "order", ...)."""
    records = read_jsonl(path, model)
    seen: set[str] = set()
    for number, record in enumerate(records, start=1):
        key = str(record.model_dump(include={"id"})["id"])
        if key in seen:
            raise StoreDataError(path, f"duplicate {what} id {key}", number)
        seen.add(key)
    return records
