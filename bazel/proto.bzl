"""Protobuf and gRPC C++ code generation with the system protoc and grpc_cpp_plugin.

Bazel's native proto_library cannot produce gRPC stubs offline, so this macro calls Debian's
/usr/bin/protoc directly. For `polder_proto_library(name = "foo", srcs = ["foo.proto"])` it
generates:

  foo_cc_proto   cc_library with the messages (foo.pb.h / foo.pb.cc)
  foo_cc_grpc    cc_library with the service stubs (foo.grpc.pb.h / .cc), only if grpc = True
  foo_descriptor_set   a FileDescriptorSet with imports and source info, for tools and tests

Imports are workspace-relative (`import "proto/polder/node/v1/ingest.proto";`), well-known
types come from /usr/include. `deps` are other polder_proto_library names (their .proto files
are inputs; their generated cc libraries are linked).
"""

_PROTOC = "/usr/bin/protoc"
_GRPC_PLUGIN = "/usr/bin/grpc_cpp_plugin"

def _strip_proto(src):
    if not src.endswith(".proto"):
        fail("polder_proto_library srcs must end in .proto: " + src)
    return src[:-len(".proto")]

def polder_proto_library(
        name,
        srcs,
        deps = [],
        grpc = False,
        visibility = None,
        testonly = False,
        import_root = None):
    """See the file comment. `import_root` (e.g. "proto"): imports are relative to that folder
    ("polder/datasets/common/v1/location.proto") instead of the workspace, as the registry's
    reference names are; generated headers are then included the same way."""
    pkg = native.package_name()
    stems = [_strip_proto(s) for s in srcs]
    pb_h = [s + ".pb.h" for s in stems]
    pb_cc = [s + ".pb.cc" for s in stems]
    grpc_h = [s + ".grpc.pb.h" for s in stems] if grpc else []
    grpc_cc = [s + ".grpc.pb.cc" for s in stems] if grpc else []
    dep_protos = [d + "_protos" for d in deps]

    native.filegroup(
        name = name + "_protos",
        srcs = srcs + dep_protos,
        visibility = visibility,
        testonly = testonly,
    )

    # $(GENDIR) is bazel-out/<cfg>/bin; outputs land in <GENDIR>/<pkg>/.
    out_dir = "$(GENDIR)"
    include_flags = "-I. -I/usr/include"
    includes = []
    if import_root:
        if not pkg.startswith(import_root + "/"):
            fail("package %s is not under import_root %s" % (pkg, import_root))
        out_dir = "$(GENDIR)/" + import_root
        include_flags = "-I%s -I. -I/usr/include" % import_root

        # //<import_root>:import_root adds <import_root> (source and generated) to the include path.
        includes = ["//%s:import_root" % import_root]
    plugin_args = ""
    if grpc:
        plugin_args = "--plugin=protoc-gen-grpc=%s --grpc_out=%s " % (_GRPC_PLUGIN, out_dir)
    src_paths = " ".join([(pkg + "/" + s) if pkg else s for s in srcs])
    native.genrule(
        name = name + "_gen",
        srcs = srcs + dep_protos,
        outs = pb_h + pb_cc + grpc_h + grpc_cc,
        cmd = ("%s %s --cpp_out=%s " % (_PROTOC, include_flags, out_dir)) + plugin_args + src_paths,
        testonly = testonly,
    )
    native.genrule(
        name = name + "_descriptor_set",
        srcs = srcs + dep_protos,
        outs = [name + "_descriptor_set.pb"],
        cmd = ("%s %s --include_imports --include_source_info " % (_PROTOC, include_flags)) +
              "--descriptor_set_out=$@ " + src_paths,
        visibility = visibility,
        testonly = testonly,
    )
    native.cc_library(
        name = name + "_cc_proto",
        srcs = pb_cc,
        hdrs = pb_h,
        deps = [d + "_cc_proto" for d in deps] + ["//third_party:protobuf"] + includes,
        visibility = visibility,
        testonly = testonly,
    )
    if grpc:
        native.cc_library(
            name = name + "_cc_grpc",
            srcs = grpc_cc,
            hdrs = grpc_h,
            deps = [":" + name + "_cc_proto", "//third_party:grpc"] + includes,
            visibility = visibility,
            testonly = testonly,
        )
