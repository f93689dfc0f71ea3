"""`manage.py create_api_token <username> [--name NAME]`: a new bearer token for the JSON API.

The token is printed once, alone on the last line of the output (scripts take `tail -n 1`);
only its SHA-256 hash is stored. Revoke tokens in the admin (API tokens → "Revoke").
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from usertasks.models import ApiToken


class Command(BaseCommand):
    help = "Create an API bearer token for a user and print it (alone on the last line)."

    def add_arguments(self, parser):
        parser.add_argument("username", help="The user the token acts as.")
        parser.add_argument("--name", default="", help="What the token is for (shown in the admin).")

    def handle(self, *args, username, name, **options):
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive; its tokens would be refused")
        if len(name) > 100:
            raise CommandError("--name must be at most 100 characters")
        token, secret = ApiToken.issue(user, name=name)
        self.stdout.write(
            f"Created API token {token.token_prefix}… for {username}. It is shown only now; "
            "send it as 'Authorization: Bearer <token>'."
        )
        self.stdout.write(secret)
