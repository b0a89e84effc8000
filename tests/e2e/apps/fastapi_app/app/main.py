import uuid
from collections.abc import Generator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException
from sqlmodel import Session, func, select

from app.core.config import settings
from app.core.db import engine
from app.core.security import verify_password
from app.models import (
    Item,
    ItemCreate,
    ItemPublic,
    ItemsPublic,
    LoginRequest,
    Token,
    User,
    UserPublic,
)


def get_db() -> Generator[Session, None, None]:
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


def get_current_user(
    session: SessionDep, authorization: Annotated[str | None, Header()] = None
) -> User:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(status_code=401, detail="Not authenticated")
    try:
        user_id = uuid.UUID(token)
    except ValueError:
        raise HTTPException(status_code=403, detail="Could not validate credentials") from None
    user = session.get(User, user_id)
    if not user:
        raise HTTPException(status_code=404, detail="User not found")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]

login = APIRouter(tags=["login"])
users = APIRouter(prefix="/users", tags=["users"])
items = APIRouter(prefix="/items", tags=["items"])


@login.post("/login/access-token")
def login_access_token(session: SessionDep, form_data: LoginRequest) -> Token:
    user = session.exec(select(User).where(User.email == form_data.username)).first()
    if not user or not verify_password(form_data.password, user.hashed_password):
        raise HTTPException(status_code=400, detail="Incorrect email or password")
    return Token(access_token=str(user.id))


@users.get("/me", response_model=UserPublic)
def read_user_me(current_user: CurrentUser) -> User:
    return current_user


@items.get("/", response_model=ItemsPublic)
def read_items(session: SessionDep, current_user: CurrentUser) -> ItemsPublic:
    mine = select(Item).where(Item.owner_id == current_user.id)
    count = session.exec(
        select(func.count()).select_from(Item).where(Item.owner_id == current_user.id)
    ).one()
    found = session.exec(mine).all()
    return ItemsPublic(data=[ItemPublic.model_validate(item) for item in found], count=count)


@items.post("/", response_model=ItemPublic)
def create_item(session: SessionDep, current_user: CurrentUser, item_in: ItemCreate) -> Item:
    item = Item.model_validate(item_in, update={"owner_id": current_user.id})
    session.add(item)
    session.commit()
    session.refresh(item)
    return item


api_router = APIRouter()
api_router.include_router(login)
api_router.include_router(users)
api_router.include_router(items)

app = FastAPI(title="app", openapi_url=f"{settings.API_V1_STR}/openapi.json")
app.include_router(api_router, prefix=settings.API_V1_STR)
