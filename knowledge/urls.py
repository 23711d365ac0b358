from django.urls import path

from knowledge import views

urlpatterns = [
    path("search", views.SearchView.as_view(), name="kb-search"),
]
