"""The library's actions on other pages (see `apps.library.actions`), under /library/actions/."""

from django.urls import path

from apps.library import actions

app_name = "library-actions"

urlpatterns = [
    path("analyses/<uuid:pk>/save", actions.save_analysis, name="save"),
    path("analyses/<uuid:pk>/pin", actions.pin_sentence, name="pin"),
    path("pins/<int:pin_id>/note", actions.annotate_pin, name="annotate"),
    path("pins/<int:pin_id>/unpin", actions.unpin, name="unpin"),
    path("collect", actions.add_to_collection, name="collect"),
    path("works/<str:work_id>/citation/<str:style>", actions.citation, name="citation"),
]
