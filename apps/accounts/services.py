"""Writes for user accounts."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from rest_framework.authtoken.models import Token


@transaction.atomic
def rotate_api_token(user: AbstractBaseUser) -> Token:
    """Give ``user`` a fresh API token; the old one stops working at once."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)
