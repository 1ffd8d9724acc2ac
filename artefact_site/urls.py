from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from artefact_site import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("accounts/", include("apps.accounts.urls")),
    path("", include("apps.analysis.urls")),
    path("", include("apps.corpus.urls")),
    path("", include("apps.library.urls")),
    path("", include("apps.iiif.urls")),
    path("library/actions/", include("apps.library.action_urls")),
    path("api/v1/", include("artefact_site.api_urls")),
    path("admin/", admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
]

handler400 = "apps.core.views.bad_request"
handler404 = "apps.core.views.page_not_found"
handler500 = "apps.core.views.server_error"

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
