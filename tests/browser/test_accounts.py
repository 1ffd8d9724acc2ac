"""A researcher signs up, logs out and in, and creates, copies and revokes an API token."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from apps.accounts.models import ApiToken
from apps.corpus.models import Work

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-passphrase-42"


def api_status(live_server, key: str) -> int:
    """The status a program gets from the API with ``key``, over real HTTP."""
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/topics", headers={"Authorization": f"Token {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def open_user_menu(page: Page, username: str) -> None:
    toggler = page.get_by_role("button", name="Show the menu")
    if toggler.is_visible():
        toggler.click()
    page.get_by_role("button", name=username).click()


def test_sign_up_log_out_and_log_in_again(page, screenshots):
    page.goto("/")
    page.get_by_role("main").get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    page.get_by_label("Username").fill("ada")
    page.get_by_label("E-mail address").fill("ada@example.org")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    expect(page.locator(".af-messages")).to_contain_text("Welcome to ArteFact, ada.")
    expect(page.get_by_role("heading", name="Workspace")).to_be_visible()
    screenshots("signed-up")

    open_user_menu(page, "ada")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="See what scholarship has written")).to_be_visible()

    page.get_by_role("banner").get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Workspace")).to_be_visible()


def test_a_wrong_password_says_so(page, django_user_model, screenshots):
    django_user_model.objects.create_user("ada", "ada@example.org", PASSWORD)

    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username")
    screenshots("wrong-password")


def test_a_token_is_shown_once_copied_used_and_revoked(
    page, logged_in, live_server, django_user_model, screenshots
):
    ada = django_user_model.objects.create_user("ada", "ada@example.org", PASSWORD)
    logged_in(ada)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto("/accounts/profile/")
    expect(page.get_by_test_id("no-tokens")).to_be_visible()
    screenshots("no-tokens")

    page.get_by_label("Token name").fill("laptop")
    page.get_by_role("button", name="Create token").click()

    key = page.get_by_test_id("new-key").input_value()
    assert key.startswith("af_")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#new-key-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("() => navigator.clipboard.readText()") == key
    screenshots("new-token")
    assert api_status(live_server, key) == 200

    page.goto("/accounts/profile/")
    assert key not in page.content()
    row = page.get_by_test_id("token-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("laptop")
    expect(row).to_contain_text(ApiToken.objects.get(user=ada).prefix)
    expect(row).to_contain_text("In the last minute")
    screenshots("listed")

    page.get_by_role("button", name="Revoke token laptop").click()

    expect(page.get_by_role("status")).to_contain_text("is revoked")
    expect(page.get_by_test_id("no-tokens")).to_be_visible()
    assert api_status(live_server, key) == 401


def test_copy_buttons_show_only_once_their_module_listens(page, logged_in, django_user_model):
    """A click that lands before clipboard.js or citation.js has run would do nothing, so
    the buttons stay hidden until then. Here both modules arrive empty, as if still loading."""
    logged_in(django_user_model.objects.create_user("ada", "ada@example.org", PASSWORD))
    Work.objects.create(id="W1", title="On birds", author="A. Author", bibtex="@article{a,}")
    page.goto("/works/W1/")
    expect(page.get_by_role("button", name="Copy BibTeX")).to_be_visible()
    page.locator(".af-cite-menu > summary").click()
    expect(page.get_by_role("button", name="Copy Chicago")).to_be_visible()

    for module in ("clipboard", "citation"):
        page.route(
            f"**/js/{module}*.js",
            lambda route: route.fulfill(status=200, content_type="text/javascript", body=""),
        )
    page.goto("/works/W1/")
    expect(page.get_by_role("heading", name="On birds", level=3)).to_be_visible()
    expect(page.get_by_role("button", name="Copy BibTeX")).to_be_hidden()
    expect(page.locator(".af-cite-menu > summary")).to_be_hidden()
