"""FastAPI dependencies: the container and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from voicemgmt.bootstrap import Container
from voicemgmt.domain.directory import Account
from voicemgmt.services.tokens import TokenOwner
from voicemgmt.web.auth import authenticated_account, token_owner


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_account(request: Request, container: ContainerDep) -> Account:
    return await authenticated_account(request, container.authenticator)


async def get_token_owner(request: Request, container: ContainerDep) -> TokenOwner:
    return await token_owner(request, container.tokens)


AccountDep = Annotated[Account, Depends(get_account)]
TokenOwnerDep = Annotated[TokenOwner, Depends(get_token_owner)]
