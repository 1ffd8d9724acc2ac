"""A model that changes size gets a new vector index instead of refusing the new vectors.

Transactional: an index built in the transaction that deleted the old rows would still see
them (PostgreSQL indexes recently dead tuples), which no real re-import does.
"""

import numpy as np
import pytest
from django.db import connection

from apps.corpus import services
from apps.corpus.models import Sentence, SentenceEmbedding
from apps.corpus.vectors import store_embeddings

pytestmark = pytest.mark.django_db(transaction=True)


def vector_indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'corpus_embedding_hnsw_clip_%'"
        )
        return {row[0] for row in cursor.fetchall()}


def test_vectors_of_a_new_size_replace_the_old_index(corpus_dir):
    root, _ = corpus_dir(models=())
    services.import_corpus([root])
    ids = list(Sentence.objects.order_by("id").values_list("id", flat=True))
    rng = np.random.default_rng(0)
    store_embeddings("clip", ids, rng.standard_normal((len(ids), 8)).astype(np.float32))
    assert vector_indexes() == {"corpus_embedding_hnsw_clip_8"}
    SentenceEmbedding.objects.filter(model="clip").delete()
    assert SentenceEmbedding.objects.filter(model="clip").count() == 0

    larger = rng.standard_normal((len(ids), 24)).astype(np.float32)
    store_embeddings("clip", ids, larger)

    assert vector_indexes() == {"corpus_embedding_hnsw_clip_24"}
    assert SentenceEmbedding.objects.filter(model="clip").count() == len(ids)
