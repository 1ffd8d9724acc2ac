"""axe-core finds no serious or critical violation on the account pages, wide or narrow."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.accounts.services import create_api_token
from tests.browser.axe import assert_accessible
from tests.browser.conftest import DESKTOP, PHONE

pytestmark = pytest.mark.django_db(transaction=True)


def check_both_widths(page, url: str) -> None:
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        page.goto(url)
        assert_accessible(page)


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/accounts/login/",
        "/accounts/signup/",
        "/accounts/password/reset/",
    ],
    ids=["landing", "log-in", "sign-up", "password-reset"],
)
def test_public_pages(page, screenshots, url):
    check_both_widths(page, url)
    screenshots("visitor")


@pytest.mark.parametrize(
    "url",
    ["/", "/accounts/profile/", "/accounts/password/change/"],
    ids=["home", "profile", "password-change"],
)
def test_pages_of_a_logged_in_researcher(page, logged_in, django_user_model, screenshots, url):
    ada = django_user_model.objects.create_user("ada", "ada@example.org", "a-long-passphrase-42")
    create_api_token(ada, "laptop")
    create_api_token(ada, "analysis server")
    logged_in(ada)

    check_both_widths(page, url)
    screenshots("researcher")


def test_the_sign_up_form_with_errors(page, screenshots):
    page.goto("/accounts/signup/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("E-mail address").fill("ada@example.org")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Password confirmation").fill("different")
    page.get_by_role("button", name="Create account").click()

    page.locator(".af-field-error").first.wait_for()
    assert_accessible(page)
    page.set_viewport_size(PHONE)
    assert_accessible(page)
    screenshots("errors")


def test_the_new_token_panel(page, logged_in, django_user_model, screenshots):
    ada = django_user_model.objects.create_user("ada", "ada@example.org", "a-long-passphrase-42")
    logged_in(ada)
    page.goto("/accounts/profile/")
    page.get_by_label("Token name").fill("laptop")
    page.get_by_role("button", name="Create token").click()

    page.get_by_test_id("new-key").wait_for()
    assert_accessible(page)
    page.set_viewport_size(PHONE)
    assert_accessible(page)


def test_the_skip_link_comes_first_and_takes_the_keyboard_to_the_content(page):
    page.goto("/")

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")

    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("main").get_by_role("link", name="Create an account")).to_be_focused()
