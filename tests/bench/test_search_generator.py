"""The synthetic corpus generator that the search, load and figure benches share."""

import numpy as np
import pytest

from bench.search import WORKS, generate


def test_a_corpus_smaller_than_one_sentence_per_work_is_refused_with_the_minimum():
    with pytest.raises(ValueError, match=f"at least {WORKS:,} sentences, not 100"):
        generate(100, dim=8)


def test_the_smallest_corpus_gives_every_work_its_sentence():
    data = generate(WORKS, dim=8)
    assert data["counts"].sum() == WORKS
    assert (data["counts"] >= 1).all()
    assert len(data["work_of_row"]) == WORKS
    assert np.allclose(np.linalg.norm(data["vectors"], axis=1), 1.0, atol=1e-5)
