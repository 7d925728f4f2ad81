"""Errors the server answers with: an HTTP status and an OpenAI-style JSON body naming the problem."""

from __future__ import annotations


class ApiError(Exception):
    """An answer other than 200: ``{"error": {"message", "type", "code"}}`` with ``status``."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "code": self.code}}


def bad_request(message: str, code: str = "invalid_input") -> ApiError:
    return ApiError(400, message, code=code)
