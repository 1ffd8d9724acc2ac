"""What every page stands on: static files, htmx and Bootstrap, and a CSP under which the
site's own pages, the API docs, the browsable API and the admin all work."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.accounts.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)


def test_static_files_are_served_by_the_live_server(page):
    response = page.request.get("/static/vendor/htmx/htmx.min.js")

    assert response.status == 200
    assert "javascript" in response.headers["content-type"]


def test_every_page_loads_htmx_4_and_bootstrap_from_the_site(page):
    page.goto("/")

    assert page.evaluate("() => htmx.version") == "4.0.1"
    assert page.evaluate("() => typeof bootstrap.Dropdown") == "function"


@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/api/v1/docs"])
def test_pages_carry_a_strict_content_security_policy(client, url):
    """Checked with Django's test client, so it runs where there is no Chromium as well."""
    policy = client.get(url)["Content-Security-Policy"]

    assert "default-src 'self'" in policy
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    assert "img-src 'self' data: blob:" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy


def test_htmx_requests_are_recognised(client):
    response = client.get("/", headers={"HX-Request": "true"})

    assert response.wsgi_request.htmx


def test_the_swagger_ui_works_under_the_csp(page):
    response = page.goto("/api/v1/docs")

    assert "content-security-policy" in response.headers
    page.get_by_role("heading", name="ArteFact API").wait_for()
    operations = page.locator(".opblock")
    operations.first.wait_for()
    assert operations.count() > 5


def test_the_admin_works_under_the_csp(page, logged_in, django_user_model):
    curator = django_user_model.objects.create_superuser("curator", "curator@example.org", "pw")
    logged_in(curator)

    page.goto("/admin/")
    page.get_by_role("link", name="Users").first.click()
    page.get_by_role("link", name="curator").click()

    page.get_by_role("heading", name="Change user").wait_for()


def test_the_browsable_api_works_under_the_csp(page, logged_in, django_user_model):
    logged_in(django_user_model.objects.create_user("ada", "ada@example.org", "pw"))

    page.goto("/api/v1/topics")

    page.locator(".response-info").wait_for()


def test_htmx_posts_carry_the_csrf_token_from_the_body(page, logged_in, django_user_model):
    """htmx 4 inherits only attributes marked ``:inherited``; base.html puts the CSRF header
    on <body> that way, so a button anywhere can post without a token of its own."""
    ada = django_user_model.objects.create_user("ada", "ada@example.org", "pw")
    logged_in(ada)
    page.goto("/accounts/profile/")
    page.evaluate(
        """() => {
          const button = document.createElement("button");
          button.textContent = "Create with htmx";
          button.setAttribute("hx-post", "/accounts/profile/tokens/");
          button.setAttribute("hx-vals", '{"name": "from htmx"}');
          button.setAttribute("hx-target", "#main");
          button.setAttribute("hx-select", "#main > *");
          document.querySelector("main").prepend(button);
          htmx.process(button);
        }"""
    )

    page.get_by_role("button", name="Create with htmx").click()

    expect(page.get_by_test_id("new-token")).to_contain_text("from htmx")
    assert ApiToken.objects.get(user=ada).name == "from htmx"
