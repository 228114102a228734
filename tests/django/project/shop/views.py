from django.http import HttpRequest, HttpResponse

from tests.django.project.shop.models import Product


def create_product(request: HttpRequest) -> HttpResponse:
    product = Product.objects.create(name=request.GET.get("name", "tea"))
    return HttpResponse(f"created {product.pk}")


async def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello")
