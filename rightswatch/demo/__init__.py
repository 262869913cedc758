"""The bundled demo: sample works made in code, a small site served on loopback, the loop run."""
