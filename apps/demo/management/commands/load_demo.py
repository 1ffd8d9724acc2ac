from django.core.management.base import BaseCommand, CommandError

from apps.demo import services
from apps.engine.registry import ModelLoadError


class Command(BaseCommand):
    help = (
        "Load the demo world: the demo corpus (imported and embedded with both models), "
        "the example gallery and the demo user (demo / demo)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when the corpus has works"
        )

    def handle(self, *args, seed: int, if_empty: bool, **options):
        if if_empty and not services.database_is_empty():
            self.stdout.write("The corpus is not empty; the demo world was not loaded.")
            return
        try:
            summary = services.load_demo(seed=seed)
        except ModelLoadError as error:
            raise CommandError(f"The demo world was not loaded: {error}") from None
        self.stdout.write(
            "Loaded the demo world: {works} works, {sentences} sentences, "
            "{gallery_images} gallery images "
            "in {total_seconds} s. Log in as demo / demo.".format(**summary)
        )
