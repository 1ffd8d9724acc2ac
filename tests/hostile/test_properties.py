"""Property tests of the parameters the OpenAPI run fuzzes poorly: the filters and `k` of text
search, crop strings, `cell=r,c`, `max_side`, and the fields of the library's, the analysis
pages' and the accounts' forms, each given arbitrary text (NUL, lone surrogates, numbers past
any range, NaN and infinity, very long strings, path traversal). The property: never a server
error; under `/api/` every refusal is the envelope with a sentence; a page answers 200 (with
the error on its form), a redirect after a POST, or a 4xx. Also: bodies far past
`DATA_UPLOAD_MAX_MEMORY_SIZE` are refused with a sentence.

Values reach the server percent-encoded from their UTF-8 bytes (lone surrogates with
``surrogatepass``, as a hand-made request would send them), not through the test client's
encoder, which would refuse them on this side.

Text search needs a model worker to embed its words; none runs here (it would cost the module
most of its time), so a valid search ends in the documented 503 `model_unavailable`, the one
5xx the properties allow, and everything that is read before it (filters, `k`, the model) is
exercised.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apps.analysis import services
from apps.analysis.models import Analysis, Heatmap
from tests.analysis.conftest import painting_bytes, upload
from tests.hostile.http import post_form, post_multipart, query

pytestmark = pytest.mark.django_db

SPECIAL = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff\ud800",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "1e309",
    "-1",
    "0",
    "-0",
    "1.5",
    "0x10",
    "1_000",
    "²",
    "٣",
    "1,2",
    "²,³",
    "-1,-1",
    "1,2,3",
    "99999999999999999999999999",
    "9" * 5000,
    "9" * 5000 + ",1",
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%00",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "a" * 20_000,
    "paintingclip\x00",
    "clip",
    "paintingclip",
)

hostile_text = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(max_size=40),
    st.text(st.characters(categories=["Cs", "Cc", "Nd", "No"]), max_size=8),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.tuples(st.text(min_size=1, max_size=3), st.integers(1, 3000)).map(lambda t: t[0] * t[1]),
)
"""Arbitrary text, weighted towards what breaks parsers and databases."""

json_value = st.recursive(
    st.one_of(
        hostile_text,
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(allow_nan=False),
    ),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)

BOUNDED = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

OVERSIZED = 5 * 1024 * 1024


def post_json(client, path: str, body: object):
    """`body` as JSON; lone surrogates travel as JSON's ``\\ud800`` escapes, as they may."""
    return client.generic("POST", path, json.dumps(body), content_type="application/json")


def assert_no_server_error(response, path: str, *, allowed_503: tuple[str, ...] = ()) -> None:
    """The property: no 5xx (but the 503s named), the API's refusals the envelope with a
    sentence, a page's refusal a 4xx, a form's answer 200 or a redirect."""
    status = response.status_code
    api = path.startswith("/api/")
    if status == 503 and api:
        assert response.json()["error"] in allowed_503, (path[:200], response.content[:300])
    elif status == 503:
        assert allowed_503, (path[:200], response.content[:300])
    else:
        assert status < 500, (path[:200], status, response.content[:300])
    if api and status >= 400:
        assert response["Content-Type"] == "application/json", (path[:200], status)
        body = response.json()
        assert set(body) == {"error", "detail"}, body
        assert isinstance(body["error"], str)
        assert body["error"]
        assert len(body["detail"]) > 10, body
        assert body["detail"].endswith((".", "?", "!")), body
    if not api:
        assert status in (200, 204, 302) or 400 <= status < 500, (path[:200], status)


@pytest.fixture
def analysis(api, media, redis_connection) -> Analysis:
    """A queued analysis of the API client's researcher, with a stored 'where is' map."""
    analysis = Analysis.objects.get(pk=upload(api).json()["id"])
    Heatmap.objects.create(
        analysis=analysis,
        model_key=analysis.model_key,
        text="boat",
        text_digest=services.text_digest("boat"),
        rows=7,
        cols=7,
        values=bytes(4 * 49),
    )
    return analysis


@pytest.fixture
def page_client(client, api):
    client.force_login(api.user)
    return client


@BOUNDED
@given(
    q=hostile_text, topics=hostile_text, creators=hostile_text, model=hostile_text, k=hostile_text
)
@example(q="boat", topics="t" * 65, creators="", model="", k="1")  # was 'topics: 0.'
def test_text_search_filters_never_fail(api, redis_connection, q, topics, creators, model, k):
    for path in (
        "/api/v1/search?" + query(q=q, topics=topics, creators=creators, model=model, k=k),
        "/api/v1/search?" + query(q=q, k=k),
    ):
        assert_no_server_error(api.get(path), path, allowed_503=("model_unavailable",))


@BOUNDED
@given(q=hostile_text, topics=hostile_text, creators=hostile_text, model=hostile_text)
def test_the_search_page_never_fails(page_client, redis_connection, q, topics, creators, model):
    path = "/search/?" + query(q=q, topics=[topics, "x"], creators=creators, model=model)
    assert_no_server_error(page_client.get(path), path, allowed_503=("model_unavailable",))


@BOUNDED
@given(size=hostile_text, max_side=hostile_text, k=hostile_text, row=st.integers(0, 10**30))
def test_the_analysis_api_query_parameters_never_fail(api, analysis, size, max_side, k, row):
    base = f"/api/v1/analyses/{analysis.pk}"
    digest = services.text_digest("boat")
    for path in (
        f"{base}/image?" + query(size=size),
        f"{base}/where/{digest}.png?" + query(max_side=max_side),
        f"{base}/cells/{row}/{row}?" + query(k=k),
        f"{base}?" + query(k=k),
    ):
        assert_no_server_error(api.get(path), path)


@BOUNDED
@given(
    cell=hostile_text, k=hostile_text, model=hostile_text, topics=hostile_text, where=hostile_text
)
@example(cell="²,³", k="²", model="", topics="", where="")  # isdigit() but not int()
@example(cell="9" * 5000 + ",1", k="9" * 5000, model="", topics="", where="")  # past int()
def test_the_analysis_page_reads_any_query_string(
    page_client, analysis, cell, k, model, topics, where
):
    """The analysis page ignores malformed state in its URL (a link can be typed)."""
    path = f"/analyses/{analysis.pk}/?" + query(
        cell=cell, k=k, model=model, topics=topics, creators=topics, group=cell, where=where
    )
    response = page_client.get(path)
    assert_no_server_error(response, path)
    nul = any("\x00" in value for value in (cell, k, model, topics, where))
    assert response.status_code == (400 if nul else 200)  # a NUL: RefuseNulCharacters


@BOUNDED
@given(crop=hostile_text, topics=hostile_text, model=hostile_text)
def test_an_upload_refuses_any_malformed_crop_or_filter_with_a_sentence(
    api, media, redis_connection, crop, topics, model
):
    image = ("painting.jpg", painting_bytes())
    fields = {"crop": crop, "topics": topics, "model": model}
    response = post_multipart(api, "/api/v1/analyses", image=image, **fields)
    assert_no_server_error(response, "/api/v1/analyses")
    assert response.status_code in (202, 400)


@BOUNDED
@given(values=st.lists(hostile_text, min_size=4, max_size=4))
def test_the_region_form_takes_any_numbers(page_client, analysis, values):
    path = f"/analyses/{analysis.pk}/region"
    fields = dict(zip(("left", "top", "right", "bottom"), values, strict=True))
    response = post_form(page_client, path, **fields)
    assert_no_server_error(response, path)
    assert response.status_code == 302


@BOUNDED
@given(
    name=hostile_text, notes=hostile_text, tags=hostile_text, cell=hostile_text, other=hostile_text
)
@example(name="n", notes="", tags="", cell="²,1", other="x")  # isdigit() but not int()
@example(name="n", notes="", tags="", cell="not-a-uuid", other="x")  # collection id
def test_the_library_forms_take_any_text(page_client, analysis, name, notes, tags, cell, other):
    """Saving and pinning on the analysis page, adding to a collection, creating one, and the
    library's search: each answers, with a message where the input is refused."""
    actions = f"/library/actions/analyses/{analysis.pk}"
    for path, fields in (
        (f"{actions}/save", {"name": name, "notes": notes, "tags": tags, "cell": cell}),
        (f"{actions}/pin", {"sentence": other, "cell": cell, "action": name}),
        ("/library/actions/collect", {"work": other, "collection": cell, "new_name": name}),
        ("/library/actions/collect", {"sentence": other, "collection": "new", "new_name": name}),
        ("/library/collections/", {"name": name, "description": notes}),
        ("/accounts/profile/tokens/", {"name": name}),
    ):
        assert_no_server_error(post_form(page_client, path, **fields), path)
    path = "/library/?" + query(q=name, tag=tags, model=other)
    assert_no_server_error(page_client.get(path), path)


@BOUNDED
@given(name=json_value, notes=json_value, tags=json_value, cell=json_value, ids=json_value)
def test_the_library_and_heatmap_api_take_any_json(api, analysis, name, notes, tags, cell, ids):
    for path, body in (
        ("/api/v1/library/saved", {"analysis": str(analysis.pk), "name": name, "notes": notes}),
        ("/api/v1/library/saved", {"analysis": name, "name": "n", "tags": tags, "cell": cell}),
        ("/api/v1/library/collections", {"name": name, "description": notes}),
        (f"/api/v1/analyses/{analysis.pk}/heatmaps", {"sentence_ids": ids}),
        (f"/api/v1/analyses/{analysis.pk}/where", {"text": name}),
        (f"/api/v1/analyses/{analysis.pk}/rerun", {"model": name, "topics": ids}),
        ("/api/v1/library/saved", ids),
    ):
        assert_no_server_error(post_json(api, path, body), path)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/analyses/{pk}/heatmaps",
        "/api/v1/analyses/{pk}/where",
        "/api/v1/library/saved",
        "/api/v1/library/collections",
        "/api/v1/analyses",
    ],
)
def test_a_json_body_past_the_size_limit_is_refused_with_a_sentence(api, analysis, path):
    path = path.format(pk=analysis.pk)
    body = json.dumps({"sentence_ids": ["s1"] * (OVERSIZED // 6), "name": "x" * OVERSIZED})
    assert len(body) > OVERSIZED

    response = api.generic("POST", path, body, content_type="application/json")

    assert response.status_code == 413, response.content[:300]
    assert response.json() == {
        "error": "request_too_large",
        "detail": "The request body is larger than this server accepts.",
    }


def test_a_form_body_past_the_size_limit_is_refused(page_client, analysis):
    fields = {"name": "x" * OVERSIZED, "description": "y"}
    response = post_form(page_client, "/library/collections/", **fields)

    assert response.status_code == 400
    assert not analysis.owner.collections.exists()
