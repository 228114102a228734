"""No views: the demo runs from the command line."""

urlpatterns: list[object] = []
