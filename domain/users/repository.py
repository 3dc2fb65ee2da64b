from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.models import User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_login(self, login: str) -> User | None:
        query = select(User).where(func.lower(User.login) == login.lower())
        return (await self.session.execute(query)).scalar_one_or_none()

    async def create(self, login: str, password_hash: str) -> User | None:
        """The new user, or ``None`` when the login (case-insensitively) is taken."""
        statement = (
            insert(User)
            .values(login=login, password_hash=password_hash)
            .on_conflict_do_nothing()
            .returning(User)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()
