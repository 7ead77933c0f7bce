"""Helpers shared by the bulk imports (old system, catalogue files): the per-row report and
refusals in an operator's words. Every write still goes through ``implants.services``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

CREATED = "created"
UPDATED = "updated"
LINKED = "linked"
UNCHANGED = "unchanged"
CONFERIR = "conferir"  # resembles one of ours but not surely: nothing written (implants.names)
SKIPPED = "skipped"
STATUSES = (CREATED, UPDATED, LINKED, UNCHANGED, CONFERIR, SKIPPED)

# What the operator can do about a refused field, by the model's error code.
_FIELD_LABELS = {"name": "nome", "slug": "nome (slug)", "manufacturer": "fabricante", "website": "site"}


class RowSkipped(Exception):
    """A row that cannot be imported; the message is the reason shown in the report."""


@dataclass
class RowOutcome:
    key: str  # what identifies the row to the operator: line number, legacy id
    label: str  # manufacturer and name
    status: str
    reason: str = ""
    images: int = 0

    def line_text(self) -> str:
        return f"{self.key}: {self.label} — {self.status}" + (f" ({self.reason})" if self.reason else "")


@dataclass
class ImportReport:
    outcomes: list[RowOutcome] = field(default_factory=list)
    queued_batches: int = 0

    def add(self, outcome: RowOutcome) -> None:
        self.outcomes.append(outcome)

    def counts(self) -> dict[str, int]:
        counted = Counter(o.status for o in self.outcomes)
        return {status: counted.get(status, 0) for status in STATUSES}

    def lines(self, *, dry_run: bool = False) -> list[str]:
        """One line per row, then the summary. In a dry run the statuses are what the real run
        would do (nothing was written)."""
        out = [f"  {o.line_text()}" for o in self.outcomes]
        counts = self.counts()
        head = "Resultado da simulação (o que seria feito; nada foi gravado): " if dry_run else "Resultado: "
        out.append(
            head
            + ", ".join(f"{n} {status}" for status, n in counts.items() if n or status in (CREATED, SKIPPED))
            + f"; {sum(o.images for o in self.outcomes)} imagens novas"
        )
        return out


def refusal(exc: ValidationError) -> str:
    """A catalogue refusal in words an operator can act on (never the model's bare message)."""
    parts = []
    by_field = exc.error_dict if hasattr(exc, "error_dict") else {"": exc.error_list}
    for field_name, errors in by_field.items():
        label = _FIELD_LABELS.get(field_name, field_name or "linha")
        for error in errors:
            code = error.code or ""
            if code == "unique":
                parts.append(
                    f"já existe outro com o mesmo {label} mas escrito de outro jeito: "
                    'use --alias "Nome antigo=Nome nosso" para dizer que são o mesmo'
                )
            elif code == "max_length":
                parts.append(
                    f"{label} longo demais (máximo {error.params['limit_value']} caracteres): encurte-o na origem"
                )
            elif code == "control_characters":
                parts.append(f"{label} com caracteres de controle invisíveis: corrija o texto na origem")
            else:
                message = error.message % error.params if error.params else error.message
                parts.append(f"{label}: {message} — corrija a linha na origem e rode de novo")
    return "recusado pelo catálogo: " + "; ".join(parts)


def bucket_problem(bucket: str, exc: Exception) -> str:
    """Why a bucket cannot be read, in one line with what to do (the commands' CommandError)."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
    if code in ("NoSuchBucket", "404", "NotFound"):
        why = "não existe nesse endpoint"
    elif code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        why = "acesso negado"
    elif type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        why = "sem credenciais"
    else:
        why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}".rstrip(": ")
    return (
        f"Não foi possível ler o bucket {bucket} ({why}): confira o nome do bucket, --endpoint-url e as "
        "variáveis AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION."
    )
