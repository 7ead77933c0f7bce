"""Learn the features from the catalogue's pictures and the staff-confirmed cases (see
``matching.training``), evaluate the new model against the running one on the same held-out set,
save its checkpoint (its own model id) and record the run for the admin.

    manage.py train_matcher --max-minutes 8                # train, evaluate, report
    manage.py train_matcher --unfreeze-blocks 2            # ...the tower's last 2 blocks too (lr/10)
    manage.py train_matcher --max-minutes 8 --activate     # ...and switch the workers if it is better
    manage.py train_matcher --activate-run 3               # switch to run 3 (same rule)
    manage.py train_matcher --deactivate                   # roll back to the model active before

``--activate`` switches only when the new model beat the running one on that set; otherwise it
refuses and says so (exit status 1). The switch re-embeds the catalogue (no mixed vectors) and the
new model starts uncalibrated. Staff do the same from the admin ("Ativar este modelo", "Voltar ao
modelo anterior"): the same services, each switch audited (``TrainingActivation``).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.utils import timezone

from kernel.commands import RaioxCommand
from matching.models import TrainingStatus


def _pct(value: float) -> str:
    return f"{value * 100:5.1f}%"


class Command(RaioxCommand):
    help = "Treina o modelo de identificação com o catálogo e os casos confirmados; compara com o atual."

    def add_arguments(self, parser):
        parser.add_argument("--max-minutes", type=float, default=20.0, help="stop training after this long")
        parser.add_argument("--device", choices=("cpu", "cuda"), help="default: the workers' device")
        parser.add_argument("--epochs", type=int, default=300, help="at most this many epochs")
        parser.add_argument("--views-per-image", type=int, default=48, help="augmented training views per picture")
        parser.add_argument("--eval-views", type=int, default=4, help="held-out views per held-out picture")
        parser.add_argument("--heldout-implants", type=float, default=0.25, help="share of implants held out entirely")
        parser.add_argument("--heldout-images", type=float, default=0.2, help="share of pictures held out per implant")
        parser.add_argument("--lr", type=float, default=1e-3)
        parser.add_argument(
            "--unfreeze-blocks",
            type=int,
            default=0,
            help="also train the visual tower's last N transformer blocks (and ln_post/proj); 0: the head only",
        )
        parser.add_argument("--backbone-lr", type=float, help="learning rate of the unfrozen blocks (default: lr/10)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", type=Path, help="folder for training.json (default var/reports/training-...)")
        parser.add_argument("--activate", action="store_true", help="switch the workers when the new model is better")
        parser.add_argument("--activate-run", type=int, help="activate an earlier run (same rule)")
        parser.add_argument("--deactivate", action="store_true", help="roll back to the model active before")

    def handle(self, *args: object, **options: object) -> None:
        from matching import services

        if options["deactivate"]:
            try:
                model_id = services.training_run_deactivate(log=self.stdout.write)
            except services.ActivationRefused as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(self.style.SUCCESS(f"Workers de volta a {model_id}; catálogo recalculado."))
            return
        if options["activate_run"]:
            self._activate(services, int(options["activate_run"]))
            return
        from matching.training import Options, TrainConfig, run_training

        run = run_training(
            Options(
                max_minutes=float(options["max_minutes"]),
                device=str(options["device"] or ""),
                views_per_image=max(1, int(options["views_per_image"])),
                eval_views=max(1, int(options["eval_views"])),
                heldout_implants=float(options["heldout_implants"]),
                heldout_images=float(options["heldout_images"]),
                seed=int(options["seed"]),
                config=TrainConfig(
                    epochs=max(0, int(options["epochs"])),
                    lr=float(options["lr"]),
                    seed=int(options["seed"]),
                    unfreeze_blocks=max(0, int(options["unfreeze_blocks"])),
                    backbone_lr=None if options["backbone_lr"] is None else float(options["backbone_lr"]),
                ),
            ),
            log=self.stdout.write,
            progress_file=self.stderr,
        )
        if run.status != TrainingStatus.DONE:
            raise CommandError(f"Treinamento #{run.pk} falhou: {run.message}")
        self._print(run)
        out: Path = options["out"] or Path(settings.VAR_DIR) / "reports" / f"training-{timezone.now():%Y%m%d-%H%M%S}"
        out.mkdir(parents=True, exist_ok=True)
        record = {
            "run": run.pk,
            "model_id": run.model_id,
            "base_model_id": run.base_model_id,
            "untrained_start": run.untrained_start,
            "checkpoint": run.checkpoint_path,
            "seconds": run.seconds,
            "parameters": run.parameters,
            "sets": run.sets,
            "curves": run.curves,
            "results": run.results,
        }
        (out / "training.json").write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
        self.stdout.write(f"Relatório: {out / 'training.json'}")
        if options["activate"]:
            self._activate(services, run.pk)

    def _activate(self, services, run_id: int) -> None:
        try:
            run = services.training_run_activate(run_id=run_id, log=self.stdout.write)
        except services.ActivationRefused as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Workers trocados para {run.model_id}; catálogo recalculado. O modelo novo começa sem "
                "calibração: rode evaluate_matching para calibrá-lo."
            )
        )

    def _print(self, run) -> None:
        if run.untrained_start:
            self.stdout.write(
                self.style.WARNING("*** partiu de pesos NÃO TREINADOS: mostra a mecânica, não o acerto ***")
            )
        self.stdout.write(
            f"Treinamento #{run.pk}: {run.model_id} em {run.seconds:.0f} s; checkpoint {run.checkpoint_path}"
        )
        points = run.curves
        if points:
            first, last = points[0], points[-1]
            self.stdout.write(
                f"  perda {first['loss']:.3f} → {last['loss']:.3f} em {last['epoch']} épocas; "
                f"top-1 retido {_pct(first['heldout_top1'])} → {_pct(last['heldout_top1'])}"
            )
        results = run.results
        if results.get("unfrozen_blocks"):
            self.stdout.write(
                f"  blocos da torre treinados: {results['unfrozen_blocks']}; "
                f"{results.get('seconds_per_epoch') or 0:.2f} s por época"
            )
        self.stdout.write(f"  conjunto retido: {results.get('set', '')}")
        self.stdout.write(f"  {'modelo':<44} {'grupo':<18} {'n':>5} {'top-1':>7} {'top-3':>7}")
        for key in ("running", "new"):
            row = results[key]
            for group, label in (
                ("all", "todos"),
                ("in_training", "no treino"),
                ("heldout_implants", "fora do treino"),
            ):
                g = row[group]
                rates = f"{_pct(g['top1']):>7} {_pct(g['top3']):>7}"
                self.stdout.write(f"  {row['model_id'][:44]:<44} {label:<18} {g['queries']:>5} {rates}")
        verdict = "melhor" if results.get("better") else "NÃO é melhor"
        self.stdout.write(f"  o modelo novo {verdict} que o atual neste conjunto")
