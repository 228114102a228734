"""No views: the project needs a URLconf only because Django asks for one."""

urlpatterns: list[object] = []
