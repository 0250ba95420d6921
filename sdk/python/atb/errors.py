"""Exceptions: one type per atb_status, each carrying the plugin's (or the host check's) message."""

from . import abi


class AtbError(Exception):
    """A refused call.  `status` is the atb_status code, `message` names the field, value and what is allowed."""

    status = abi.ERR_INTERNAL

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class InvalidArgumentError(AtbError, ValueError):
    status = abi.ERR_INVALID_ARGUMENT


class UnsupportedError(AtbError):
    status = abi.ERR_UNSUPPORTED


class VersionMismatchError(AtbError):
    status = abi.ERR_VERSION_MISMATCH


class OutOfMemoryError(AtbError, MemoryError):
    status = abi.ERR_OUT_OF_MEMORY


class InternalError(AtbError):
    status = abi.ERR_INTERNAL


_BY_STATUS = {cls.status: cls for cls in (InvalidArgumentError, UnsupportedError, VersionMismatchError,
                                          OutOfMemoryError, InternalError)}


def error_for_status(status, message):
    """The exception for a status a plugin returned (an unknown code is an internal error)."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        return InternalError(f"{message} (the plugin returned the unknown status {status})")
    return cls(message)


def message_of(error):
    """The NUL-terminated message of an atb_error, as the C++ host reads it."""
    text = bytes(error.message).split(b"\0", 1)[0].decode("utf-8", errors="replace")
    return text if text else "(the plugin gave no message)"


def check(status, error, context):
    """Raises the exception for a non-OK status, worded as the C++ host's status_from_plugin."""
    if status != abi.OK:
        raise error_for_status(status, f"{context}: {message_of(error)}")
