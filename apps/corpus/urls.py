from django.urls import path

from apps.corpus import views

app_name = "corpus"

urlpatterns = [
    path("works/<str:work_id>/", views.work_page, name="work"),
    path("figures/<int:figure_id>/", views.figure_page, name="figure"),
    path("sentences/<str:sentence_id>/context", views.sentence_context, name="context"),
]
