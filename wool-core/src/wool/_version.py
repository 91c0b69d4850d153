"""The installed version of wool-core."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version

try:
    version = _distribution_version("wool-core")
except PackageNotFoundError:  # running from a source tree that is not installed
    version = "0+unknown"
