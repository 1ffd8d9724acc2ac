from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import create_api_token


class Command(BaseCommand):
    help = (
        "Create a named API token for USERNAME and print its key, once: only a digest is "
        "stored. The user's other tokens keep working; revoke them on the profile page."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--name",
            default="manage.py create_api_token",
            help="What the token is for, as the profile page lists it.",
        )

    def handle(self, *args, username: str, name: str, **options):
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: username})
        except user_model.DoesNotExist:
            raise CommandError(f"There is no user named {username!r}.") from None
        _token, key = create_api_token(user, name)
        self.stdout.write(key)
