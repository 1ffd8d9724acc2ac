from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from apps.accounts import forms, views
from apps.core.ratelimit import rate_limited

app_name = "accounts"

urlpatterns = [
    path(
        "login/",
        rate_limited("login")(
            auth_views.LoginView.as_view(
                authentication_form=forms.LoginForm, redirect_authenticated_user=True
            )
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("profile/", views.profile, name="profile"),
    path("profile/tokens/", views.create_token, name="create_token"),
    path("profile/tokens/<int:token_id>/revoke/", views.revoke_token, name="revoke_token"),
    path("password/change/", views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/reset/",
        rate_limited("password_reset")(
            auth_views.PasswordResetView.as_view(
                form_class=forms.PasswordResetForm,
                email_template_name="registration/password_reset_email.txt",
                subject_template_name="registration/password_reset_subject.txt",
                success_url=reverse_lazy("accounts:password_reset_done"),
            )
        ),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            form_class=forms.SetPasswordForm,
            success_url=reverse_lazy("accounts:password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
