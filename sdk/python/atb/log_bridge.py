"""Plugin log records into Python's `logging`, under the logger "atb" (plugins log as "atb.plugin.NAME")."""

import logging

from . import abi

logger = logging.getLogger("atb")

# A level below DEBUG for the ABI's TRACE records.
TRACE = 5
_TO_PYTHON = {abi.LOG_TRACE: TRACE, abi.LOG_DEBUG: logging.DEBUG, abi.LOG_INFO: logging.INFO,
              abi.LOG_WARN: logging.WARNING, abi.LOG_ERROR: logging.ERROR}


def abi_level():
    """The ABI level matching the effective level of the "atb" logger (records below it are never sent)."""
    level = logger.getEffectiveLevel()
    if level <= TRACE:
        return abi.LOG_TRACE
    if level <= logging.DEBUG:
        return abi.LOG_DEBUG
    if level <= logging.INFO:
        return abi.LOG_INFO
    if level <= logging.WARNING:
        return abi.LOG_WARN
    if level <= logging.ERROR:
        return abi.LOG_ERROR
    return abi.LOG_OFF


def _log_record(_user_data, level, logger_name, message):
    # Called from the plugin's threads; ctypes takes the GIL.  An exception here cannot cross into C.
    try:
        name = logger_name.decode("utf-8", "replace") if logger_name else "?"
        text = message.decode("utf-8", "replace") if message else ""
        logger.getChild("plugin." + name).log(_TO_PYTHON.get(level, logging.INFO), "%s", text)
    except Exception:  # noqa: BLE001 - a logging failure must never unwind into the plugin
        pass


# One callback for the life of the process: plugins keep the pointer until they are unloaded.
LOG_CALLBACK = abi.LogFn(_log_record)


def host_services():
    """The atb_host_services a plugin is given at load: this bridge at the "atb" logger's level."""
    return abi.HostServices.versioned(log=LOG_CALLBACK, log_level=abi_level())
