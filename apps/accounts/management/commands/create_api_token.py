from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import rotate_api_token


class Command(BaseCommand):
    help = "Print a new API token for USERNAME (any earlier token of that user stops working)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: username})
        except user_model.DoesNotExist:
            raise CommandError(f"There is no user named {username!r}.") from None
        self.stdout.write(rotate_api_token(user).key)
