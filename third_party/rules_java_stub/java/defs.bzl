"""Offline stand-in for @rules_java//java:defs.bzl: forwards to Bazel 4.2.3's native Java rules.

Bazel's default Java toolchains load this file even in a C++-only build. Polder has no Java
targets; the Kafka broker runs from jars fetched by tools/setup, outside Bazel.
"""

def java_binary(**kwargs):
    native.java_binary(**kwargs)

def java_import(**kwargs):
    native.java_import(**kwargs)

def java_library(**kwargs):
    native.java_library(**kwargs)

def java_plugin(**kwargs):
    native.java_plugin(**kwargs)

def java_test(**kwargs):
    native.java_test(**kwargs)

def java_toolchain(**kwargs):
    native.java_toolchain(**kwargs)

def java_runtime(**kwargs):
    native.java_runtime(**kwargs)

def java_package_configuration(**kwargs):
    native.java_package_configuration(**kwargs)

def java_proto_library(**kwargs):
    native.java_proto_library(**kwargs)
