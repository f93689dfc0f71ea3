"""The typed domain errors. Every interface maps them once: HTTP status, form error, admin message."""


class UserTaskError(Exception):
    """Base of every domain error; `code` and `status` follow the gRPC codes LittleHorse uses."""

    code = "INTERNAL"
    status = 500

    def __init__(self, message: str, *, field_errors: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        # For INVALID_ARGUMENT on results: field name -> what is wrong with it.
        self.field_errors = field_errors or {}

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


class InvalidArgument(UserTaskError):
    code = "INVALID_ARGUMENT"
    status = 400


class PermissionDenied(UserTaskError):
    code = "PERMISSION_DENIED"
    status = 403


class NotFound(UserTaskError):
    code = "NOT_FOUND"
    status = 404


class FailedPrecondition(UserTaskError):
    code = "FAILED_PRECONDITION"
    status = 409
