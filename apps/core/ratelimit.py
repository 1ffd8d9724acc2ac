"""Rate limits of the account pages: sign-up, log-in, password reset, API-token creation.

Each is a count per client address (per user for API tokens) in a fixed window, kept in the
Redis cache that every web process shares, so the limit holds across processes and hosts.
A request over the limit is answered 429 with a page that says when to try again; the view
does not run, so a flood of sign-ups or reset e-mails costs no password hashing and no mail.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind ARTEFACT_PROXY_COUNT proxies the entry of
    X-Forwarded-For that the outermost trusted proxy wrote (entries to its left are whatever
    the client sent, and may be forged)."""
    proxies = settings.ARTEFACT_PROXY_COUNT
    if proxies:
        header = request.META.get("HTTP_X_FORWARDED_FOR", "")
        forwarded = [part.strip() for part in header.split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"10/h"`` (or ``10/hour``, ``5/m``, ``100/d``, ``3/s``)."""
        try:
            count, period = text.split("/")
            return cls(int(count), PERIODS[period.strip()[0].lower()])
        except (ValueError, KeyError, IndexError):
            raise ImproperlyConfigured(
                f"The rate {text!r} is not a count per period, like 10/h."
            ) from None


def over_limit(scope: str, who: str) -> int | None:
    """Count one request of `who` in `scope`; the seconds until the window ends if that one
    was over RATE_LIMITS[scope], else None."""
    rate = Rate.parse(settings.RATE_LIMITS[scope])
    window = int(time.time() // rate.seconds)
    key = f"rate-limit:{scope}:{who}:{window}"
    # add() then incr(): atomic in Redis, and the key expires with its window.
    try:
        cache.add(key, 0, timeout=rate.seconds)
        count = cache.incr(key)
    except redis.RedisError:
        # Without Redis the limit cannot be counted; the pages stay open (log-in keeps
        # django-axes, which counts failures in the database) rather than all fail.
        logger.warning("Rate limit %r not counted: Redis is unreachable.", scope)
        return None
    if count <= rate.count:
        return None
    return max(1, math.ceil((window + 1) * rate.seconds - time.time()))


def _wait(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    if minutes <= 1:
        return "a minute"
    return f"{minutes} minutes"


def too_many_requests(request: HttpRequest, sentence: str, seconds: int) -> HttpResponse:
    response = render(request, "too_many_requests.html", {"sentence": sentence}, status=429)
    response["Retry-After"] = str(seconds)
    return response


def rate_limited(scope: str, *, per_user: bool = False) -> Callable:
    """Limit a view's POSTs to RATE_LIMITS[scope] per client address (per user with
    `per_user`); other methods pass freely, so the form itself always opens."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def limited(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST":
                who = f"user-{request.user.pk}" if per_user else client_ip(request)
                seconds = over_limit(scope, who)
                if seconds is not None:
                    sentence = (
                        "There have been too many attempts from your address; "
                        if not per_user
                        else "You have made too many of these requests; "
                    ) + f"try again in {_wait(seconds)}."
                    return too_many_requests(request, sentence, seconds)
            return view(request, *args, **kwargs)

        return limited

    return decorate
