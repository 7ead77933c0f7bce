"""The fixtures in X-ray files, for operators checking a batch and for benchmarks.

manage.py find_fixtures film.png folder/ [--json]

``--json`` prints one object: ``{"results": [{"file", "fixtures": [{"box", "axis_deg", "apex",
"score"}], "quality": {...}}]}`` (boxes in each image's own pixels; ``file`` as given, or the path
inside a folder given). A file that does not decode gets ``{"file", "error"}`` instead.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from django.core.management.base import CommandError
from PIL import Image

from kernel.commands import RaioxCommand
from kernel.imaging import InvalidImage, decode_image
from kernel.storage_keys import SAFE_EXTENSIONS
from matching.fixtures import find_fixtures


def _files(paths: list[str]) -> list[tuple[str, Path]]:
    """(name to print, path) of each file given and each image file inside each folder given."""
    out = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for inner in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SAFE_EXTENSIONS):
                out.append((inner.relative_to(path).as_posix(), inner))
        else:
            out.append((given, path))
    return out


def find_in_file(name: str, path: Path) -> dict:
    try:
        decoded = decode_image(path.read_bytes())  # the worker's own checks (formats, DICOM, size)
        image = Image.open(io.BytesIO(decoded.content))
    except (OSError, InvalidImage) as exc:
        return {"file": name, "error": str(exc) or type(exc).__name__}
    report = find_fixtures(image)
    return {"file": name, "fixtures": [f.as_json() for f in report.fixtures], "quality": report.quality}


class Command(RaioxCommand):
    help = "Encontra os implantes (fixações) em radiografias: caixa, eixo, ápice, nota e qualidade."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help="image files or folders of images")
        parser.add_argument("--json", action="store_true", help="one JSON object on stdout")

    def handle(self, *args: object, **options: object) -> None:
        missing = [given for given in options["paths"] if not Path(given).exists()]
        if missing:
            raise CommandError(f"Não encontrado: {', '.join(missing)}: passe arquivos de imagem ou pastas que existam.")
        results = [find_in_file(name, path) for name, path in _files(list(options["paths"]))]
        if options["json"]:
            self.stdout.write(json.dumps({"results": results}, ensure_ascii=False))
            return
        for result in results:
            if "error" in result:
                self.stdout.write(f"{result['file']}: erro: {result['error']}")
                continue
            problems = ", ".join(result["quality"].get("problems", [])) or "—"
            self.stdout.write(f"{result['file']}: {len(result['fixtures'])} implante(s); qualidade: {problems}")
            for n, f in enumerate(result["fixtures"], 1):
                self.stdout.write(
                    f"  {n}. caixa {f['box']}  eixo {f['axis_deg']:+.1f}°  ápice {f['apex']:<7}  nota {f['score']:.2f}"
                )
