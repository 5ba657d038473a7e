"""Compiler options shared by Polder's C++ targets (on top of .bazelrc)."""

POLDER_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-sign-compare",
    "-Wno-missing-field-initializers",
]
