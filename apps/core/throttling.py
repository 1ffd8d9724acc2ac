"""The API's throttles. A module of its own, without DRF's views: REST_FRAMEWORK's settings
name these classes, and DRF imports them while its views are still loading."""

from __future__ import annotations

import logging

import redis
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

logger = logging.getLogger(__name__)


class _CountedWhileRedisAnswers:
    """A DRF throttle whose counts live in the Redis cache: while Redis is out of reach the
    request passes (and a warning is logged) instead of every endpoint answering 500 — a
    read needs no Redis, and a request that does (an upload, a text search) refuses with its
    own 503 sentence."""

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except redis.RedisError:
            logger.warning("Throttle %s not counted: Redis is unreachable.", type(self).__name__)
            return True


class UserThrottle(_CountedWhileRedisAnswers, UserRateThrottle):
    pass


class AnonThrottle(_CountedWhileRedisAnswers, AnonRateThrottle):
    pass


class AnalysisRateThrottle(UserThrottle):
    """Analyses cost GPU time: their creation has a budget of its own per user."""

    scope = "analyses"
