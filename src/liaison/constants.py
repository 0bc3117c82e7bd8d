"""The markers a liaison writes to stdout; ``python -m liaison.constants`` prints them as JSON."""

START_MARKER = "LIAISON:CONNECTED"
STOP_MARKER = "LIAISON:DISCONNECTED"

__all__ = ["START_MARKER", "STOP_MARKER"]

if __name__ == "__main__":
    import sys

    sys.stdout.write(f'{{"START_MARKER": "{START_MARKER}", "STOP_MARKER": "{STOP_MARKER}"}}')
    sys.stdout.flush()
