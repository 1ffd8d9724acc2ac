from django.urls import path

from apps.corpus import api

urlpatterns = [
    path("sentences/<str:sentence_id>", api.SentenceDetail.as_view(), name="sentence-detail"),
    path("works/<str:work_id>", api.WorkDetail.as_view(), name="work-detail"),
    path("work-images/<int:pk>", api.WorkImageFile.as_view(), name="work-image"),
    path("figures/<int:pk>", api.FigureDetail.as_view(), name="figure-detail"),
    path("topics", api.TopicList.as_view(), name="topic-list"),
    path("creators", api.CreatorList.as_view(), name="creator-list"),
]
