"""Measure how well the running model identifies implants, on a labelled set.

    manage.py evaluate_matching --folder heldout/            # <implant-slug>/*.png (or <manufacturer>/<implant>/)
    manage.py evaluate_matching --confirmed                  # the cases staff confirmed
    manage.py evaluate_matching --leave-one-out              # each reference image against the others
    manage.py evaluate_matching --folder heldout/ --compare /srv/models/finetuned.pt
    manage.py evaluate_matching --folder films/ --baseline-whole-film  # generate_catalog --films: per condition,
                                                                        # beside the whole film as before
    manage.py evaluate_matching --folder films/ --fit-calibration      # fit a calibration of the running model
                                                                        # on this set (staff activate it in the admin)
    manage.py evaluate_matching --folder films/ --fit-calibration --calibration isotonic  # the method (default:
                                                                        # the one of lower held-out ECE on the set)

The report measures the running model's active calibration (if any) beside the similarity labels:
run it on a set the calibration was not fitted on for held-out figures.

Writes report.json and report.html into --out, stores the report for the admin, prints the table
and the thresholds suggested by the measured calibration. See matching.evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.db.models import Q
from django.utils import timezone
from tqdm import tqdm

from implants.models import ReferenceImage
from kernel.commands import RaioxCommand
from matching.calibration import ISOTONIC, SOFTMAX
from matching.embedder import ModelSpec, get_embedder, pick_device, resolve_spec
from matching.evaluation.datasets import confirmed_items, folder_items, leave_one_out_items
from matching.evaluation.figures import film_of, observations, summarise
from matching.evaluation.searchers import DatabaseSearch, MemorySearch, run_queries
from matching.evaluation.services import evaluation_report_create
from matching.evaluation.summary import Summary
from matching.evaluation_report import UNTRAINED_LABEL, render_fragment, render_page

CALIBRATION_METHODS = {"softmax": SOFTMAX, "isotonic": ISOTONIC}  # --calibration names


def _pct(value: float) -> str:
    return f"{value * 100:5.1f}%"


class Command(RaioxCommand):
    help = "Mede o acerto da identificação (top-1/3/5, confiança, limiares) num conjunto rotulado."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--folder", type=Path, help="labelled images: <implant-slug>/*.png")
        which.add_argument("--confirmed", action="store_true", help="the staff-confirmed submissions")
        which.add_argument("--leave-one-out", action="store_true", help="each reference image against the rest")
        parser.add_argument("--out", type=Path, help="folder for report.json and report.html")
        parser.add_argument("--compare", help="second model: a checkpoint file or an open_clip tag")
        parser.add_argument(
            "--limit", type=int, default=0, help="evaluate this many queries, evenly spaced over the set"
        )
        parser.add_argument("--no-save", action="store_true", help="do not store the report for the admin")
        parser.add_argument(
            "--fit-calibration",
            action="store_true",
            help="fit a calibration (probability and bands) of the running model on this set, stored inactive",
        )
        parser.add_argument(
            "--calibration",
            choices=sorted(CALIBRATION_METHODS),
            help="the method of --fit-calibration: a temperature-scaled softmax or isotonic regression on the "
            "first candidate's similarity and margin (default: the one of lower held-out ECE on this set)",
        )
        parser.add_argument(
            "--baseline-whole-film",
            action="store_true",
            help="also measure the whole picture without the finder and canonical view (the matching before)",
        )

    def handle(self, *args: object, **options: object) -> None:
        embedder = get_embedder()
        model_id = embedder.model_id
        stale = ReferenceImage.objects.filter(implant__is_active=True).filter(
            Q(embedding__isnull=True) | ~Q(embedding_model=model_id)
        )
        if stale.exists():
            self.stderr.write(
                self.style.WARNING(
                    f"{stale.count()} imagens de referência ainda sem embedding de {model_id}: "
                    "rode `manage.py reembed` antes, ou elas ficam fora da busca."
                )
            )
        if options["folder"]:
            if not options["folder"].is_dir():
                raise CommandError(f"Pasta não encontrada: {options['folder']}")
            items, unknown = folder_items(options["folder"])
            for label in unknown:
                self.stderr.write(f"pasta {label!r}: nenhum implante com esse nome; ignorada")
            dataset = f"pasta {options['folder'].name} ({len(items)} imagens)"
        elif options["confirmed"]:
            items = confirmed_items()
            dataset = f"casos confirmados ({len(items)})"
        else:
            items, alone = leave_one_out_items(model_id)
            if alone:
                self.stderr.write(f"{alone} imagens de referência sem outra do mesmo implante: fora do leave-one-out")
            dataset = f"leave-one-out nas referências ({len(items)})"
        if options["limit"] and len(items) > int(options["limit"]):
            # Evenly spaced, not the first N: every manufacturer and distortion stays represented.
            step = len(items) / int(options["limit"])
            items = [items[int(i * step)] for i in range(int(options["limit"]))]
        if not items:
            raise CommandError("Nenhuma consulta rotulada para avaliar.")

        searchers = [DatabaseSearch(embedder)]
        if options["compare"]:
            searchers.append(self._compare_searcher(str(options["compare"])))
        if options["baseline_whole_film"]:
            total = ReferenceImage.objects.filter(implant__is_active=True).count()
            with tqdm(total=total, desc="catálogo (filme inteiro)", unit="img", file=self.stderr) as bar:
                searchers.append(MemorySearch(embedder, progress=bar.update, whole_film=True))
        from matching.calibration import active_calibration, calibration_fit

        summaries = []
        fit_results = None
        for searcher in searchers:
            with tqdm(total=len(items), desc=searcher.model_id[:40], unit="consulta", file=self.stderr) as bar:
                results = []
                for result in run_queries(searcher, items):
                    results.append(result)
                    bar.update(1)
            if fit_results is None:
                fit_results = results  # the running model's
            active = active_calibration(model_id=searcher.model_id)
            summaries.append(
                summarise(
                    results,
                    model_id=searcher.model_id,
                    untrained=searcher.untrained,
                    dataset=dataset,
                    active_calibration=active,
                )
            )

        created = timezone.localtime().strftime("%Y-%m-%d %H:%M")
        out: Path = options["out"] or Path(settings.VAR_DIR) / "reports" / f"evaluation-{timezone.now():%Y%m%d-%H%M%S}"
        out.mkdir(parents=True, exist_ok=True)
        report_json = {"created": created, "models": [s.as_json() for s in summaries]}
        (out / "report.json").write_text(json.dumps(report_json, ensure_ascii=False, indent=1), encoding="utf-8")
        (out / "report.html").write_text(render_page(summaries, created=created), encoding="utf-8")
        report = None
        if not options["no_save"]:
            report = evaluation_report_create(summaries=summaries, html=render_fragment(summaries, created=created))
        self._print(summaries)
        if options["fit_calibration"]:
            calibration = calibration_fit(
                model_id=model_id,
                observations=observations(fit_results),
                groups=[film_of(r) for r in fit_results],
                dataset=dataset,
                report=report,
                method=CALIBRATION_METHODS[options["calibration"]] if options["calibration"] else None,
            )
            self._print_calibration(calibration)
        self.stdout.write(f"Relatório: {out / 'report.json'} e {out / 'report.html'}")

    def _compare_searcher(self, spec_text: str) -> MemorySearch:
        path = Path(spec_text).expanduser()
        if path.suffix or "/" in spec_text:
            if not path.is_file():
                raise CommandError(f"Checkpoint não encontrado: {spec_text}")
            spec = ModelSpec(settings.RAIOX_CLIP_MODEL, str(path), path)
        else:
            with self.settings_override(spec_text):
                spec = resolve_spec()
            if spec.untrained:
                raise CommandError(f"Pesos {spec_text!r} não estão no cache: rode fetch_model.")
        from matching.embedder import Embedder

        other = Embedder(spec, pick_device())
        total = ReferenceImage.objects.filter(implant__is_active=True).count()
        with tqdm(total=total, desc=f"catálogo {other.model_id[:30]}", unit="img", file=self.stderr) as bar:
            return MemorySearch(other, progress=bar.update)

    @staticmethod
    def settings_override(tag: str):
        from django.test.utils import override_settings

        return override_settings(RAIOX_CLIP_PRETRAINED=tag)

    def _print_calibration(self, calibration) -> None:
        bands, params = calibration.bands, calibration.params
        if "temperature" in params:
            fitted = f"T={params['temperature']:.5f} resto={params['rest']:.4f} k={params['k']}"
        else:
            fitted = f"peso da margem {params['weight']}, {len(params['xs']) // 2} degraus"
        self.stdout.write(
            f"\nCalibração #{calibration.pk} ajustada ({calibration.method}, {calibration.queries} consultas): "
            f"{fitted}; cortes alta={bands['high']} média={bands['medium']} "
            f"sem correspondência < {bands['no_match']:.4f}; ECE no próprio conjunto {calibration.ece_fit}"
        )
        held = calibration.heldout
        if held:
            for figures in (held, *held.get("compared", {}).values()):
                self.stdout.write(
                    f"  fora do ajuste, {figures.get('method', calibration.method)} ({figures['split']}): "
                    f"ECE {figures['ece']} em {figures['queries']} consultas; "
                    + ", ".join(
                        f"{b} {v['queries']} ({_pct(v['right']) if v['right'] is not None else '—'} certos)"
                        for b, v in figures["bands"].items()
                    )
                )
        self.stdout.write("  inativa: ative-a no admin (Calibrações) para que os workers a usem.")

    def _print(self, summaries: list[Summary]) -> None:
        for s in summaries:
            if s.untrained:
                self.stdout.write(self.style.WARNING(f"*** {UNTRAINED_LABEL} ***"))
            self.stdout.write(f"\nModelo {s.model_id} · {s.dataset} · {s.implants} implantes")
            self.stdout.write(
                f"  top-1 {_pct(s.top1)}   top-3 {_pct(s.top3)}   top-5 {_pct(s.top5)}   ({s.queries} consultas)"
            )
            self.stdout.write(f"  {'fabricante':<24} {'n':>5} {'top-1':>7} {'top-5':>7}")
            for name, row in s.per_manufacturer.items():
                self.stdout.write(f"  {name[:24]:<24} {row.queries:>5} {_pct(row.top1):>7} {_pct(row.top5):>7}")
            labels = s.confidence_labels
            self.stdout.write(
                "  confiança: "
                + ", ".join(
                    f"{lv} {labels[lv].queries} ({_pct(labels[lv].right)} certos)" for lv in ("alta", "media", "baixa")
                )
            )
            sim = s.similarity_as_probability
            self.stdout.write(f"  similaridade lida como probabilidade: ECE {sim.ece if sim else None}")
            cal = s.calibrated
            if cal:
                self.stdout.write(
                    f"  probabilidade calibrada (calibração #{cal.calibration_id}, ajustada em {cal.fitted_on}): "
                    f"ECE {cal.ece}, média {cal.mean_probability}; "
                    + ", ".join(
                        f"{b} {v.queries} ({_pct(v.right) if v.right is not None else '—'} certos)"
                        for b, v in cal.bands.items()
                    )
                )
            else:
                self.stdout.write("  probabilidade calibrada: modelo ainda não calibrado")
            hidden = s.no_convincing_match
            self.stdout.write(
                f"  sem correspondência convincente (< {hidden.min_similarity}): {hidden.queries} consultas, "
                f"escondendo {hidden.hid_right_top1} 1ºs certos e {hidden.hid_right_in_top5} certos no top-5"
            )
            if s.per_condition:
                self.stdout.write(f"  {'condição':<12} {'n':>5} {'achado':>7} {'top-1':>7} {'top-3':>7} {'hub':>6}")
                for name, row in s.per_condition.items():
                    self.stdout.write(
                        f"  {name[:12]:<12} {row.queries:>5} {_pct(row.fixture_found):>7} "
                        f"{_pct(row.top1):>7} {_pct(row.top3):>7} {_pct(row.hubness.top_share):>6}"
                    )
            hub = s.hubness
            if hub is not None:
                self.stdout.write(
                    f"  hubness: o implante mais frequente é a 1ª resposta de {_pct(hub.top_share)} das consultas; "
                    f"assimetria N1 {hub.skewness}; {hub.implants_never_first} implantes nunca em 1º"
                )
            for pair in s.confused_pairs[:5]:
                self.stdout.write(f"  confusão: {pair.truth} → {pair.predicted} ({pair.count}x)")
            lat = s.latency_ms
            self.stdout.write(
                f"  tempo: embedding p50 {lat.embed_p50} ms, busca p50 {lat.search_p50} ms / p95 {lat.search_p95} ms"
            )
            sug = s.suggested
            parts = [f"RAIOX_MIN_SIMILARITY={sug.min_similarity}"]
            for key, choice in (("HIGH", sug.high), ("MEDIUM", sug.medium)):
                if choice:
                    parts.append(
                        f"RAIOX_CONFIDENCE_{key}_SIMILARITY={choice.similarity} "
                        f"RAIOX_CONFIDENCE_{key}_MARGIN={choice.margin}"
                    )
                else:
                    parts.append(f"{key}: nenhum limiar atinge a precisão pedida")
            self.stdout.write("  sugerido: " + "; ".join(parts))
