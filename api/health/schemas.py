from pydantic import BaseModel, Field


class Ping(BaseModel):
    db: float | None = Field(description="PostgreSQL round trip in ms; null when unreachable.")
    cache: float | None = Field(description="Redis round trip in ms; null when unreachable.")
    storage: float | None = Field(description="S3 HEAD bucket in ms; null when unreachable.")
