"""A stand-in librknnrt.so (NOT the vendor runtime): C sources, and the builder that
compiles them for x86_64 or aarch64. See README.md in this folder."""

from .build import (DEFAULT_VERSION, StandinBuildError, build_bare_loop, build_standin, host_arch,
                    make_board_root)

__all__ = ["DEFAULT_VERSION", "StandinBuildError", "build_bare_loop", "build_standin", "host_arch",
           "make_board_root"]
