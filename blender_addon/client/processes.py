"""Other processes, on POSIX and on Windows: is one still running, what is its command line, stop
it, start one detached. No bpy.

Why this module: the POSIX calls the local server needs do not carry over to Windows, where most
artists run Blender. There `os.WNOHANG` does not exist and `os.kill(pid, 0)` does not probe a
process: signal 0 is CTRL_C_EVENT, a Ctrl+C sent to a console process group. So on Windows a
process is probed with OpenProcess +
GetExitCodeProcess, and its command line is read through CIM (PowerShell); when it cannot be
read, the answer is "unknown", and an unknown process is never stopped.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from pathlib import Path

WINDOWS = os.name == "nt"

# Windows constants (winbase.h / processthreadsapi.h).
_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
_STILL_ACTIVE = 259
_CREATE_NO_WINDOW = 0x08000000
_CREATE_NEW_PROCESS_GROUP = 0x00000200


def split_command(text: str, windows: bool = WINDOWS) -> list[str]:
    """A command typed into a text field -> argv. Windows paths keep their backslashes and a quoted
    path with spaces ("C:\\Program Files\\...\\render-backend.exe") loses only its quotes."""
    if not windows:
        return shlex.split(text)
    parts = shlex.split(text, posix=False)  # keeps backslashes, but also the quotes around a part
    return [p[1:-1] if len(p) >= 2 and p[0] == p[-1] and p[0] in "\"'" else p for p in parts]


def detached(windows: bool = WINDOWS) -> dict:
    """Popen arguments for a child that outlives its caller and gets none of its signals: its own
    session on POSIX (a Ctrl-C in the caller's terminal does not reach it); on Windows its own
    process group and a hidden console of its own (closing Blender's console window does not close
    it, and nothing it starts pops up a window, as it would without any console)."""
    if windows:
        return {"creationflags": _CREATE_NO_WINDOW | _CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def alive(pid: int) -> bool:
    """The process exists and has not exited (a child of ours that exited is reaped here)."""
    if pid <= 0:
        return False
    return _alive_windows(pid) if WINDOWS else _alive_posix(pid)


def _alive_posix(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # our own child: reap it if it has exited
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child (the usual case: an earlier run started it)
    except OSError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: a zombie still answers kill(0)
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _alive_windows(pid: int) -> bool:
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    kernel32.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
    kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
    handle = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it exists, it is not ours to query
    try:
        code = wintypes.DWORD()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == _STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def command_line(pid: int) -> list[str] | None:
    """The process's command line, or None when it cannot be read (gone, not ours, no tool for it)."""
    if WINDOWS:
        return _command_line_windows(pid)
    try:
        return [p.decode(errors="replace") for p in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if p]
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None  # Linux: the process is gone
    except OSError:
        return None
    try:  # macOS and other systems without /proc
        out = subprocess.run(["ps", "-o", "command=", "-p", str(int(pid))], capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.decode(errors="replace").split() or None


def _command_line_windows(pid: int) -> list[str] | None:
    query = f"(Get-CimInstance Win32_Process -Filter 'ProcessId={int(pid)}').CommandLine"
    try:
        out = subprocess.run(["powershell", "-NoProfile", "-NonInteractive", "-Command", query],
                             capture_output=True, timeout=15, creationflags=0x08000000)  # CREATE_NO_WINDOW
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.decode(errors="replace").strip()
    return split_command(text, windows=True) if out.returncode == 0 and text else None


def terminate(pid: int) -> bool:
    """Ask the process to stop: SIGTERM on POSIX (the server shuts down cleanly); on Windows,
    TerminateProcess (the only stop a console-less process gets; every result the server finished
    is already whole on disk). True when the request was delivered."""
    try:
        os.kill(pid, signal.SIGTERM)  # on Windows, os.kill with SIGTERM calls TerminateProcess
    except OSError:
        return False
    return True
