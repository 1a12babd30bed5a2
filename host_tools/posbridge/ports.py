"""Opening the serial port the board is on, with errors a person can act on."""
import errno

import serial


class PortError(Exception):
    pass


def open_port(url: str, baudrate: int = 115200) -> serial.SerialBase:
    """Open a device path, a pseudo-terminal or a pyserial URL (socket://host:port, ...).
    Exclusive: a second bridge on the same board would steal half of its frames."""
    try:
        if "://" in url:
            return serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)
        return serial.Serial(url, baudrate=baudrate, timeout=0.05, exclusive=True)
    except ValueError as exc:  # pyserial: unknown URL scheme, impossible baud rate
        raise PortError(f"cannot open {url}: {exc}") from None
    except serial.SerialException as exc:
        err = getattr(exc, "errno", None)
        text = str(exc)
        if err == errno.ENOENT or "No such file" in text:
            raise PortError(f"port {url} not found: is the board plugged in? "
                            "(pyserial-ports lists the ports)") from None
        if err in (errno.EBUSY, errno.EAGAIN) or "lock" in text.lower() or "busy" in text.lower():
            raise PortError(f"port {url} is busy: another program has it open") from None
        if err == errno.EACCES or "Permission denied" in text:
            raise PortError(f"no permission to open {url}: add yourself to the dialout "
                            "group") from None
        raise PortError(f"cannot open {url}: {text}") from None
