from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.demo.training import train_demo_model


class Command(BaseCommand):
    help = (
        "Train the demo CLIP on the procedural scene world, then its painterly LoRA adapter, "
        "into apps/demo/weights (clip/ and paintingclip-lora/)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", type=Path, default=settings.DEMO_WEIGHTS)

    def handle(self, *args, seed: int, out: Path, **options):
        report = train_demo_model(seed=seed, out_dir=out)
        self.stdout.write(
            f"Trained the demo model in {report['total_seconds']} s "
            f"({report['parameters']:,} parameters); weights in {out}."
        )
