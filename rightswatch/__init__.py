"""rightswatch: find where catalogue images and audio are used on the web, and prove it."""

__version__ = "0.1.0"
