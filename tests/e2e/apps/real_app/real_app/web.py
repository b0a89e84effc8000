"""The app's HTTP API (Starlette). A duplicate email is psycopg2's UniqueViolation: 409."""

from decimal import Decimal

import psycopg2.errors
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from real_app import services


async def create_user(request: Request) -> JSONResponse:
    body = await request.json()
    try:
        user = services.register(body["email"], body["name"])
    except IntegrityError as exc:
        raise exc.orig from exc  # the driver's own error, handled below
    return JSONResponse({"id": user.id, "email": user.email}, status_code=201)


async def create_order(request: Request) -> JSONResponse:
    body = await request.json()
    order = services.place_order(int(request.path_params["user_id"]), Decimal(body["total"]))
    return JSONResponse({"id": order.id}, status_code=201)


async def user_count(request: Request) -> JSONResponse:
    return JSONResponse({"users": services.user_count()})


async def revenue(request: Request) -> JSONResponse:
    return JSONResponse({"revenue": str(services.revenue())})


async def unique_violation(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": "already exists"}, status_code=409)


app = Starlette(
    routes=[
        Route("/users", create_user, methods=["POST"]),
        Route("/users/{user_id:int}/orders", create_order, methods=["POST"]),
        Route("/users/count", user_count),
        Route("/reports/revenue", revenue),
    ],
    exception_handlers={psycopg2.errors.UniqueViolation: unique_violation},
)
