from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.demo.training import (
    TrainConfig,
    train_demo_adapter,
    train_demo_model,
    update_adapter_report,
)


class Command(BaseCommand):
    help = (
        "Train the demo CLIP on the procedural scene world, then its painterly LoRA adapter, "
        "into apps/demo/weights (clip/ and paintingclip-lora/)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", type=Path, default=settings.DEMO_WEIGHTS)
        parser.add_argument(
            "--adapter-only",
            action="store_true",
            help="train only the LoRA adapter, on the base model already in OUT/clip",
        )

    def handle(self, *args, seed: int, out: Path, adapter_only: bool, **options):
        if adapter_only:
            report = train_demo_adapter(seed=seed, out_dir=out)
            update_adapter_report(out, TrainConfig(), report)
            self.stdout.write(
                f"Trained the demo adapter in {report['adapter_seconds']} s; "
                f"weights in {out / 'paintingclip-lora'}."
            )
            return
        report = train_demo_model(seed=seed, out_dir=out)
        self.stdout.write(
            f"Trained the demo model in {report['total_seconds']} s "
            f"({report['parameters']:,} parameters); weights in {out}."
        )
